"""
Quickstart: fit, predict, evaluate
==================================

Fit :class:`sktail.AutoTailClassifier` on a small generated long-tailed corpus,
predict held-out texts, and write an evaluation report with its plots
(``quickstart_report/`` in the current folder).
"""

# %%
# A long-tailed corpus: five classes with 80 down to 6 titles.
from sklearn.model_selection import train_test_split

from sktail import AutoTailClassifier
from sktail.datasets import make_long_tail_text
from sktail.report import build_report, format_report, write_report

texts, labels = make_long_tail_text((80, 40, 20, 10, 6), noise=0.05, random_state=0)
x_train, x_test, y_train, y_test = train_test_split(
    texts, labels, test_size=0.25, stratify=labels, random_state=0
)

# %%
# Fit with the paper's objective; the estimator reports what it derived from the counts.
clf = AutoTailClassifier(epochs=30, validation_fraction=None, random_state=0)
clf.fit(x_train, y_train)
print(f"imbalance index {clf.imbalance_index_:.3f}, tail gate on: {clf.tail_gate_on_}")
print("tail classes:", list(clf.tail_classes_))

# %%
# Predict: labels come from ``classes_``, probability columns follow it.
print(clf.predict(["小麦施肥与土壤研究", "量子拓扑的光谱分析"]))
print(clf.predict_proba(x_test[:2]).round(3))

# %%
# Evaluate: overall scores, tail/mid/head bands, per-class table and plots.
report = build_report(y_test, clf.predict(x_test), clf.classes_, clf.class_counts_)
print(format_report(report))
try:
    import matplotlib  # noqa: F401

    plots = True
except ImportError:  # pip install "sktail[plots]"
    plots = False
for path in write_report(report, "quickstart_report", plots=plots):
    print("wrote", path)
