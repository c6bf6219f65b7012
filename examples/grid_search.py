"""
Grid search over the method's switches
======================================

Every component of AutoTail-BSFGM is a constructor parameter, so
:class:`~sklearn.model_selection.GridSearchCV` tunes them. Class counts, the
gate and the tail set are recomputed inside each fold from that fold's
training rows only.
"""

# %%
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktail import AutoTailClassifier
from sktail.datasets import make_long_tail_text

texts, labels = make_long_tail_text((40, 20, 10, 6), noise=0.1, random_state=2)

search = GridSearchCV(
    AutoTailClassifier(epochs=8, validation_fraction=None, random_state=0),
    {"tail_gate": [False, "auto"], "fgm_epsilon": [0.0, 0.3]},
    scoring="balanced_accuracy",
    cv=StratifiedKFold(2, shuffle=True, random_state=0),
)
search.fit(texts, labels)

# %%
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(params, f"{score:.3f}")
print("best:", search.best_params_)
