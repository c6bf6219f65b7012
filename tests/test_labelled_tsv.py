"""The command line's labelled TSV reader: exact columns, named columns, clear errors."""

import pytest

from sktail._labelled_tsv import check_label, parse_columns, read_labelled_tsv


def _file(tmp_path, content, name="data.tsv"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_two_columns_bom_crlf_and_blank_lines(tmp_path):
    path = _file(tmp_path, "\ufeff小麦施肥\t 农学 \r\n\n量子拓扑\t理学\r\n\n")
    assert read_labelled_tsv(path) == (["小麦施肥", "量子拓扑"], ["农学", "理学"])


def test_columns_by_index_and_by_header_name(tmp_path):
    path = _file(tmp_path, "id\ttitle\tfield\n1\t小麦施肥\t农学\n2\t量子拓扑\t理学\n")
    expected = (["小麦施肥", "量子拓扑"], ["农学", "理学"])
    assert read_labelled_tsv(path, columns=(1, 2), header=True) == expected
    assert read_labelled_tsv(path, columns=("title", "field"), header=True) == expected
    assert read_labelled_tsv(path, columns=("title", 2), header=True) == expected
    texts, labels = read_labelled_tsv(path, columns=(1, 2))
    assert texts[0] == "title" and labels[0] == "field"  # without --header the first line is data


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        ("a\tb\tc\n", {}, r"line 1 has 3 tab-separated columns, but 'text<TAB>label' has 2; name the text"),
        ("a\tb\nno tab here\n", {}, r"line 2 has no tab"),
        ("a\tb\n\t农学\n", {}, r"line 2 has an empty text"),
        ("a\t  \n", {}, r"line 1 has an empty label"),
        ("a\tb\tc\nd\te\n", {"columns": (0, 2)}, r"line 2 has 2 columns; --columns reads columns 0 and 2"),
        ("x\ty\na\tb\n", {"columns": ("x", "y")}, r"need --header"),
        ("x\tx\ty\na\tb\tc\n", {"columns": ("x", "y"), "header": True}, r"names the column 'x' more than once"),
        ("x\ty\tz\na\tb\tc\n", {"header": True}, r"the header has 3 columns"),
        (b"ok\tlabel\n\xd7\xd6\xc8\xfd\tx\n", {}, r"line 2 is not valid UTF-8 .* at byte 9"),
    ],
)
def test_errors_name_file_line_and_remedy(tmp_path, content, kwargs, message):
    path = _file(tmp_path, content)
    with pytest.raises(ValueError, match=message) as error:
        read_labelled_tsv(path, **kwargs)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("spec, expected", [("0,2", (0, 2)), (" title , field ", ("title", "field")), (None, None)])
def test_parse_columns(spec, expected):
    assert parse_columns(spec) == expected


@pytest.mark.parametrize("spec", ["0", "0,1,2", "1,1", ",1", "a,a"])
def test_parse_columns_refuses_anything_but_two_columns(spec):
    with pytest.raises(ValueError, match="--columns"):
        parse_columns(spec)


@pytest.mark.parametrize("label", ["a\tb", "a\nb", "a\rb", "a\u2028b", "a\x85b", "a\x0cb", "a\n"])
def test_labels_that_would_break_a_row_are_refused(label):
    with pytest.raises(ValueError, match="a tab or a line break"):
        check_label(label, "f.tsv: line 3")
    assert check_label("普通 标签", "f.tsv: line 3") == "普通 标签"


# -- issue 28: a header row read as data would become a class of one example -----------------------
@pytest.mark.parametrize("first", ["text\tlabel", "title\tCategory", "标题\t类别", "sentence\tclass_name"])
def test_a_header_row_without_header_option_is_refused(tmp_path, first):
    path = _file(tmp_path, f"{first}\n小麦施肥\t农学\n量子拓扑\t理学\n水稻育种\t农学\n")
    with pytest.raises(ValueError, match=r"line 1 looks like a header row .* Pass --header .* or --no-header"):
        read_labelled_tsv(path)
    assert read_labelled_tsv(path, header=True)[1] == ["农学", "理学", "农学"]
    assert read_labelled_tsv(path, header=False)[1][0] == first.split("\t")[1]


def test_a_first_row_whose_label_is_a_real_class_is_data(tmp_path):
    # "label" here is a class that occurs again; "农学" is no column name.
    path = _file(tmp_path, "标注规范\tlabel\n数据标注\tlabel\n小麦施肥\t农学\n")
    assert read_labelled_tsv(path)[1] == ["label", "label", "农学"]
    path = _file(tmp_path, "小麦施肥\t农学\n量子拓扑\t理学\n", name="plain.tsv")
    assert read_labelled_tsv(path)[1] == ["农学", "理学"]
