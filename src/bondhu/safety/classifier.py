"""The trained part of the detector: scikit-learn n-grams over folded text plus lexicon concepts.

Features, all from ``bondhu.safety.canonical.fold`` so Bengali script and Banglish share them:
character n-grams (2 to 5, within words; they survive dialect endings and missing vowel signs),
word uni- and bigrams, and one indicator per lexicon concept found in the text, so the model
learns how far to trust a concept in context. A multinomial logistic regression gives
probabilities for none, concern and crisis. Two thresholds, chosen on the development set and
stored in the model file, turn them into a level.

The file is a compressed joblib pickle with its training metadata. Load only files you built
or got from this project: a pickle runs code when it is loaded. ``bondhu safety train``
rebuilds it from ``data/safety/train.tsv`` in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import joblib
import numpy as np
import sklearn
from scipy import sparse
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from bondhu.errors import BondhuError
from bondhu.safety.canonical import fold
from bondhu.safety.lexicon import pool

LEVELS = ("none", "concern", "crisis")
MODEL_FILE = "detector.joblib"


def level_of(concern: float, crisis: float, concern_at: float, crisis_at: float) -> str:
    """The classifier's level from P(concern) and P(crisis) and the two thresholds."""
    return "crisis" if crisis >= crisis_at else "concern" if concern + crisis >= concern_at else "none"


def fold_all(texts) -> list[str]:
    """``fold`` over a batch (a module-level function, so the pipeline pickles)."""
    return [fold(t) for t in texts]


def concept_features(texts) -> list[dict[str, float]]:
    """One indicator per lexicon concept present after safe senses are removed."""
    return [{k: 1.0 for k, v in pool(t).items() if v} for t in texts]


def build_pipeline(c: float = 8.0, seed: int = 0) -> Pipeline:
    """The untrained model: features (see the module docstring) into logistic regression."""
    text = make_pipeline(
        FunctionTransformer(fold_all),
        FeatureUnion(
            [
                (
                    "chars",
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=60000, sublinear_tf=True
                    ),
                ),
                (
                    "words",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=(1, 2),
                        min_df=2,
                        max_features=20000,
                        token_pattern=r"\S+",
                        sublinear_tf=True,
                    ),
                ),
            ]
        ),
    )
    concepts = make_pipeline(FunctionTransformer(concept_features), DictVectorizer())
    features = FeatureUnion([("text", text), ("concepts", concepts)])
    return Pipeline(
        [
            ("features", features),
            ("model", LogisticRegression(C=c, max_iter=3000, class_weight="balanced", random_state=seed)),
        ]
    )


@dataclass
class Classifier:
    """A fitted pipeline with its thresholds: crisis when P(crisis) ≥ ``crisis_at``, concern when
    P(concern) + P(crisis) ≥ ``concern_at``; the lexicon's alarms count from a risk of
    ``lexicon_at``, and a named means makes a concern a crisis from ``escalate_at``
    (``bondhu.safety.detector.combine``)."""

    pipeline: Pipeline
    crisis_at: float = 0.5
    concern_at: float = 0.5
    meta: dict = field(default_factory=dict)
    lexicon_at: float = 0.0
    escalate_at: float = 0.0

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Rows of P(none), P(concern), P(crisis).

        The same numbers as ``pipeline.predict_proba``, computed directly: the text is folded
        once for both vectorizers and the softmax is taken here, which skips scikit-learn's
        per-call checks, most of the cost for the one message chat sends at a time."""
        features, model = self.pipeline.named_steps["features"], self.pipeline.named_steps["model"]
        text, concepts = dict(features.transformer_list)["text"], dict(features.transformer_list)["concepts"]
        folded = fold_all(texts)
        parts = [vectorizer.transform(folded) for _, vectorizer in text.steps[-1][1].transformer_list]
        parts.append(concepts.steps[-1][1].transform(concept_features(texts)))
        z = sparse.hstack(parts, format="csr") @ model.coef_.T + model.intercept_
        z = np.exp(z - z.max(axis=1, keepdims=True))
        proba = z / z.sum(axis=1, keepdims=True)
        order = [list(model.classes_).index(level) for level in LEVELS]
        return proba[:, order]

    def levels(self, texts: list[str]) -> list[tuple[str, float]]:
        """The level of each text and its risk score P(concern) + P(crisis)."""
        out = []
        for _, concern, crisis in self.probabilities(texts):
            out.append((level_of(concern, crisis, self.concern_at, self.crisis_at), float(concern + crisis)))
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        self.meta["sklearn"] = sklearn.__version__
        joblib.dump(
            {
                "pipeline": self.pipeline,
                "crisis_at": self.crisis_at,
                "concern_at": self.concern_at,
                "lexicon_at": self.lexicon_at,
                "escalate_at": self.escalate_at,
                "meta": self.meta,
            },
            path,
            compress=("xz", 6),
        )
        return path


def train(texts: list[str], labels: list[str], seed: int = 0) -> Classifier:
    """Fit the pipeline on labelled texts (labels from ``LEVELS``)."""
    pipe = build_pipeline(seed=seed)
    pipe.fit(texts, labels)
    return Classifier(pipe, meta={"n_train": len(texts)})


def bundled_path() -> Path:
    return Path(str(resources.files("bondhu.safety").joinpath(MODEL_FILE)))


def load(path: str | Path | None = None) -> Classifier:
    """Load a model file (the bundled one by default), with one clear error if it cannot be read."""
    path = Path(path) if path else bundled_path()
    if not path.is_file():
        raise BondhuError(f"{path}: crisis classifier not found; rebuild it with `bondhu safety train`")
    try:
        blob = joblib.load(path)
        return Classifier(
            blob["pipeline"],
            blob["crisis_at"],
            blob["concern_at"],
            blob.get("meta", {}),
            blob.get("lexicon_at", 0.0),
            blob.get("escalate_at", 0.0),
        )
    except Exception as err:  # a truncated file or one from an incompatible scikit-learn
        raise BondhuError(
            f"{path}: crisis classifier cannot be loaded ({type(err).__name__}: {err}); "
            "rebuild it with `bondhu safety train`"
        ) from None
