"""The CSL benchmark fetcher (:func:`fetch_csl`) and the data folder (:func:`get_data_home`)."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from sklearn.utils import Bunch

from .._atomic import atomic_write_text
from ._files import load_tsv

_CSL_DESCR = {
    "title": (
        "CSL title -> category (13 classes)\n"
        "Paper titles from the CSL benchmark task cls_ctg (Li et al., COLING 2022), "
        "labelled with one of 13 categories (工学, 理学, 医学, ...). The official split has "
        "8000 train, 1000 dev and 1000 test titles; the train split is long-tailed "
        "(3536 to 67 titles per class).\n"
        "Licence: CSL is for non-commercial research use only and must not be "
        "redistributed; sktail never bundles it."
    ),
    "abstract": (
        "CSL abstract -> discipline (67 classes)\n"
        "Paper abstracts labelled with one of 67 disciplines: a pool of the public CSL "
        "cls_dcp dev/test files and a public CSL-derived abstract set, deduplicated and "
        "split 70/15/15 by class. This split is derived, not published upstream.\n"
        "Licence: CSL is for non-commercial research use only and must not be "
        "redistributed; sktail never bundles it."
    ),
}

# The public CSL repository; files are fetched at a pinned commit so that their
# content, and hence their checksum, cannot change under the same URL.
_CSL_REPOSITORY = "https://github.com/ydli-ai/CSL"
_CSL_COMMIT = "7533806e5946f22d7a8bc601c15758632a21a9c3"
_CSL_RAW = f"https://raw.githubusercontent.com/ydli-ai/CSL/{_CSL_COMMIT}/benchmark"

# Remote files per (task, subset). Upstream rows are "to category<TAB>title<TAB>label".
# ``sha256`` pins the raw upstream file; ``tsv_sha256`` pins the converted
# ``text<TAB>label`` file that is written to disk. The converted train and dev
# splits are byte-identical to the reference copies the project benchmarks on
# (same rows, same order), so their checksums are known; the raw files' are not.
_CSL_REMOTE = {
    ("title", "train"): {
        "url": f"{_CSL_RAW}/cls_ctg/train.tsv",
        "sha256": None,
        "tsv_sha256": "5d1f098edd98759a34f8a377e2a6bb00fa4e5765243b1b1118c49ffb40462062",
    },
    ("title", "dev"): {
        "url": f"{_CSL_RAW}/cls_ctg/dev.tsv",
        "sha256": None,
        "tsv_sha256": "b6e641728a5cadb832e1d166d31beb6ce1fe8b9b1624b88a0d61a97262bf9edd",
    },
    ("title", "test"): {"url": f"{_CSL_RAW}/cls_ctg/test.tsv", "sha256": None, "tsv_sha256": None},
}

_CSL_TASKS = ("title", "abstract")
_CSL_SUBSETS = ("train", "dev", "test")


def get_data_home(data_home=None):
    """Return the folder where sktail looks for downloaded data sets.

    Parameters
    ----------
    data_home : str or path-like, default=None
        An explicit folder. ``None`` uses the ``SKTAIL_DATA`` environment
        variable if it is set and not empty, else ``~/sktail_data``. A leading
        ``~`` is expanded. The folder is not created here.

    Returns
    -------
    data_home : str
        The folder.

    Examples
    --------
    >>> from sktail.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKTAIL_DATA") or os.path.join("~", "sktail_data")
    return os.path.expanduser(os.fspath(data_home))


def _urlopen_bytes(url, timeout=60):
    """Default downloader: return the bytes at ``url``."""
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URLs
        return response.read()


def _csl_rows_to_tsv(raw, source):
    """Convert an upstream CSL benchmark file to ``text<TAB>label`` lines."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out = []
    for lineno, line in enumerate(raw.decode("utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{source}: line {lineno} has no tab; unexpected upstream format.")
        if len(fields) >= 3:
            fields = fields[1:]  # drop the text2text prompt column ("to category")
        text, label = "\t".join(fields[:-1]).strip(), fields[-1].strip()
        if not text or not label:
            raise ValueError(f"{source}: line {lineno} has an empty text or label.")
        out.append(f"{text}\t{label}\n")
    return "".join(out)


def _write_atomic(path, content):
    """Write ``content`` (str) to ``path`` atomically, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, content)


def _check_digest(data: bytes, expected, what, url, target):
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise OSError(
            f"The {what} of {url} has SHA256 {digest}, expected {expected}; the download may be "
            f"corrupted or the upstream file changed. Nothing was written to {target}."
        )
    return digest


def _download_csl(task, subset, target, downloader):
    """Download one CSL benchmark file, verify it and write it to ``target`` as TSV."""
    remote = _CSL_REMOTE[(task, subset)]
    url = remote["url"]
    raw = downloader(url)
    digest = _check_digest(raw, remote["sha256"], "file downloaded", url, target)
    converted = _csl_rows_to_tsv(raw, url)
    _check_digest(converted.encode("utf-8"), remote.get("tsv_sha256"), "converted TSV", url, target)
    if remote["sha256"] is None and remote.get("tsv_sha256") is None:
        warnings.warn(
            f"No pinned SHA256 checksum for {url}: the download was not verified "
            f"(its SHA256 is {digest}).",
            UserWarning,
            stacklevel=3,
        )
    _write_atomic(target, converted)


def fetch_csl(
    task="title",
    *,
    data_home=None,
    subset="train",
    download_if_missing=True,
    return_X_y=False,
    downloader=None,
):
    """Load a CSL classification task (Chinese Scientific Literature).

    Two tasks are available:

    ================  ==============================  =======  ===================
    task              input -> target                 classes  upstream download
    ================  ==============================  =======  ===================
    ``"title"``       paper title -> category          13      yes (``cls_ctg``)
    ``"abstract"``    paper abstract -> discipline     67      no (derived split)
    ================  ==============================  =======  ===================

    The data are read from ``<data_home>/csl-<task>/<subset>.tsv``
    (``text<TAB>label``, UTF-8, no header; see :func:`load_tsv`). If that file
    is missing and ``download_if_missing`` is True, the title task's file is
    downloaded from the public CSL repository (https://github.com/ydli-ai/CSL,
    ``benchmark/cls_ctg/``, at a pinned commit), checked against the SHA256
    checksums pinned in the registry, and converted to
    ``text<TAB>label`` and written atomically (temporary file, then
    ``os.replace``), so an interrupted or rejected download leaves no partial
    file behind. The abstract task is a pooled, deduplicated split derived
    from several CSL sources and has no upstream download: put its files in
    ``<data_home>/csl-abstract/`` yourself.

    **Licence.** CSL (Li et al., COLING 2022) may be used for non-commercial
    research only and must not be redistributed. sktail never bundles the data;
    downloads go only to your own ``data_home``.

    Parameters
    ----------
    task : {"title", "abstract"}, default="title"
        Which classification task to load.
    data_home : str or path-like, default=None
        Folder holding the ``csl-<task>/`` folders. ``None`` uses the
        ``SKTAIL_DATA`` environment variable, else ``~/sktail_data``
        (see :func:`get_data_home`).
    subset : {"train", "dev", "test"}, default="train"
        Which split to load. The title task's upstream repository has all
        three; a local copy may hold fewer.
    download_if_missing : bool, default=True
        If False, raise a :class:`FileNotFoundError` instead of downloading a
        missing file.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    downloader : callable, default=None
        Function ``url -> bytes`` used to download; ``None`` uses
        :func:`urllib.request.urlopen`. Mainly for testing and for mirrors.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes

        data : list of str
            The texts.
        target : list of str
            The label of each text.
        target_names : list of str
            The sorted distinct labels of this subset.
        DESCR : str
            A description of the task, its source and licence.

    (data, target) : tuple of list of str
        Only when ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If the file is missing and either ``download_if_missing`` is False or
        the task (``"abstract"``) has no upstream download.
    OSError
        If a downloaded file does not match its pinned SHA256 checksum; nothing
        is written in that case.
    ValueError
        If ``task`` or ``subset`` is unknown, or a file is malformed (see
        :func:`load_tsv`).

    See Also
    --------
    load_tsv : The reader used for the cached files.

    Notes
    -----
    Checksums: each remote file's registry entry may pin ``sha256`` (the raw
    download) and ``tsv_sha256`` (the converted ``text<TAB>label`` file that is
    written). The title ``train`` and ``dev`` files are verified through their
    converted checksums; a mismatch raises ``OSError`` and writes nothing. The
    title ``test`` file has no pinned checksum yet: it is fetched from the
    pinned commit unverified, and a ``UserWarning`` reports its SHA256.

    Examples
    --------
    >>> from sktail.datasets import fetch_csl
    >>> bunch = fetch_csl("title", subset="dev")  # doctest: +SKIP
    >>> len(bunch.target_names)  # doctest: +SKIP
    13
    >>> X, y = fetch_csl("abstract", data_home="/data/csl", return_X_y=True)  # doctest: +SKIP
    """
    if task not in _CSL_TASKS:
        raise ValueError(f"task must be one of {_CSL_TASKS}, got {task!r}.")
    if subset not in _CSL_SUBSETS:
        raise ValueError(f"subset must be one of {_CSL_SUBSETS}, got {subset!r}.")
    home = get_data_home(data_home)
    path = Path(home) / f"csl-{task}" / f"{subset}.tsv"

    if not path.exists():
        if (task, subset) not in _CSL_REMOTE:
            raise FileNotFoundError(
                f"{path} not found. The CSL {task!r} task is a pooled split derived from "
                "several CSL sources and has no upstream download: place its "
                f"{subset}.tsv ('text<TAB>label', UTF-8) in {path.parent}, or set "
                "SKTAIL_DATA / data_home to the folder that holds csl-abstract/."
            )
        if not download_if_missing:
            raise FileNotFoundError(
                f"{path} not found and download_if_missing=False. Set "
                f"download_if_missing=True to download it from {_CSL_REPOSITORY}, or set "
                "SKTAIL_DATA / data_home to a folder that holds csl-title/."
            )
        _download_csl(task, subset, path, downloader or _urlopen_bytes)

    texts, labels = load_tsv(path)
    if return_X_y:
        return texts, labels
    return Bunch(
        data=texts,
        target=labels,
        target_names=sorted(set(labels)),
        DESCR=_CSL_DESCR[task],
    )
