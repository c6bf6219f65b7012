"""
Baseline vs AutoTail-BSFGM
==========================

Train the label-smoothed baseline and AutoTail-BSFGM with the same seed on a
generated long-tailed corpus, compare them overall and per frequency band, and
test the difference with the exact McNemar test. One small run proves
nothing: the point is the workflow (use several seeds on real data).
"""

# %%
from sklearn.model_selection import train_test_split

from sktail import AutoTailClassifier
from sktail.datasets import make_long_tail_text
from sktail.metrics import evaluation_report, mcnemar_exact

texts, labels = make_long_tail_text((80, 35, 18, 10, 7), noise=0.15, random_state=1)
x_train, x_test, y_train, y_test = train_test_split(
    texts, labels, test_size=0.3, stratify=labels, random_state=1
)

# %%
# The same estimator with every AutoTail component switched off is the baseline.
models = {
    "label smoothing": AutoTailClassifier(tail_gate=False, bs_weight=0, fgm_epsilon=0, random_state=0),
    "AutoTail-BSFGM": AutoTailClassifier(random_state=0),
}
predictions = {}
for name, clf in models.items():
    clf.set_params(epochs=20, validation_fraction=None)
    clf.fit(x_train, y_train)
    predictions[name] = clf.predict(x_test)
    report = evaluation_report(y_test, predictions[name], (clf.classes_, clf.class_counts_))
    bands = ", ".join(f"{band} {acc:.2f}" for band, acc in report["band_accuracy"].items() if acc is not None)
    print(f"{name:16s} accuracy {report['accuracy']:.3f}  balanced {report['balanced_accuracy']:.3f}  ({bands})")

# %%
# Paired test on the same test rows.
result = mcnemar_exact(y_test, *predictions.values())
print(f"McNemar: baseline-only correct {result.b}, AutoTail-only correct {result.c}, p = {result.pvalue:.3f}")
