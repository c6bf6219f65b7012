"""numpydoc validation of the public names and a run of every docstring example."""

import dataclasses
import doctest
import importlib
import inspect
import pkgutil

import pytest

import sktail

numpydoc_validate = pytest.importorskip("numpydoc.validate")
docscrape = pytest.importorskip("numpydoc.docscrape")

PUBLIC_MODULES = [
    "sktail", "sktail.objective", "sktail.adversarial", "sktail.metrics", "sktail.datasets", "sktail.report",
    "sktail.distributed", "sktail.encoders", "sktail.training", "sktail.devices", "sktail.inference",
]
# The main classes carry the full set of sections (STYLE.md "Docstrings").
MAIN_CLASSES = ["sktail.AutoTailClassifier", "sktail.objective.AutoTailLoss", "sktail.adversarial.FGM"]

# As in scikit-learn's own docstring test: RT02 (a named return such as
# ``self : AutoTailClassifier``), GL01/GL02 (blank-line placement) and ES01
# (extended summary) are not enforced; See Also and Examples are required of
# classes only, not of every function and method.
IGNORED = {"RT02", "GL01", "GL02", "ES01"}
IGNORED_BELOW_CLASSES = {"SA01", "EX01"}


def _is_record(obj):
    return dataclasses.is_dataclass(obj) or (inspect.isclass(obj) and issubclass(obj, tuple))


def _public_names():
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)):
                # As in scikit-learn: only functions, classes, methods and properties are
                # validated; a module constant (a dict such as ``PRESETS``) has no docstring
                # of its own for numpydoc to read, only its type's.
                continue
            names.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                names.extend(
                    f"{module_name}.{name}.{attr}"
                    for attr, value in vars(obj).items()
                    if not attr.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
                )
    return sorted(set(names))


def _resolve(name):
    module_name, _, rest = name.partition(".")
    obj = importlib.import_module(module_name)
    for part in rest.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", _public_names())
def test_numpydoc(name):
    obj = _resolve(name)
    ignored = set(IGNORED)
    if not inspect.isclass(obj):
        ignored |= IGNORED_BELOW_CLASSES
    if _is_record(obj):
        ignored.add("PR01")  # record fields are documented as Attributes (checked below)
    errors = [
        f"{code}: {message}"
        for code, message in numpydoc_validate.validate(name)["errors"]
        if code not in ignored
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "name", [n for n in _public_names() if _is_record(_resolve(n))] or ["none"]
)
def test_record_fields_are_documented(name):
    if name == "none":
        pytest.skip("no record types")
    obj = _resolve(name)
    fields = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else list(obj._fields)
    documented = {p.name for p in docscrape.ClassDoc(obj)["Attributes"]}
    assert set(fields) <= documented


@pytest.mark.parametrize("name", MAIN_CLASSES)
def test_main_classes_have_every_section(name):
    obj = _resolve(name)
    doc = docscrape.ClassDoc(obj)
    for section in ("Parameters", "See Also", "Notes", "References", "Examples"):
        assert doc[section], f"{name} has no {section} section"
    defaults = {
        p.name: p.default for p in inspect.signature(obj).parameters.values() if p.default is not p.empty
    }
    for param in doc["Parameters"]:
        for part in param.name.split(","):
            if part.strip() in defaults:
                assert "default=" in param.type, f"{name}: {part.strip()} does not state its default"


def _documented_attributes(obj):
    names = set()
    for attr in docscrape.ClassDoc(obj)["Attributes"]:
        names.update(part.strip() for part in attr.name.split(","))
    return names


def test_classifier_attributes_match_what_fit_sets(long_tail_corpus):
    from sktail import AutoTailClassifier

    from .conftest import FAST_BAG

    texts, labels = long_tail_corpus
    clf = AutoTailClassifier(**{**FAST_BAG, "epochs": 1}, random_state=0).fit(texts, labels)
    fitted = {k for k in vars(clf) if k.endswith("_") and not k.startswith("_")}
    assert fitted == _documented_attributes(AutoTailClassifier)


# -- docstring examples ----------------------------------------------------------------
def _all_modules():
    names = [sktail.__name__]
    names += [m.name for m in pkgutil.walk_packages(sktail.__path__, prefix="sktail.")]
    return sorted(names)


@pytest.mark.parametrize("module_name", _all_modules())
def test_docstring_examples(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:  # a module behind an optional dependency
        pytest.skip(f"{module_name} needs an optional dependency: {error}")
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        if test.lineno is None and not test.examples:
            continue
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
