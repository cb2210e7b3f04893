"""kandisc from a notebook: ``KANRegressor``, a scikit-learn estimator over the CLI's own fit.

The keywords are the config's keys (``width``, ``grid``, ``pipeline``, ``auxiliary``, ``modules``,
``prior``, the search's ``time_budget`` and ``jobs``, ``seed``, ...) on top of ``config=`` (a YAML
path, a mapping or a ``KandiscConfig``); they are validated like a YAML file, when ``fit`` runs, into
the same one-line ``KandiscError`` (a ``ValueError``) the CLI prints. ``fit`` builds the table from
arrays or data frames (:func:`kandisc.io.data.table_from_arrays`) and runs
:func:`kandisc.fitting.fit_prepared`: in memory, or into ``run_dir`` when one is given (then the run
directory is the CLI's). Saving, loading and pickling live in :mod:`kandisc.estimator_state`.

>>> from kandisc import KANRegressor
>>> est = KANRegressor(width=[2, 5, 1], pipeline=[{"fit": {"steps": 50}}, "symbolic"]).fit(X, y)
>>> est.sympy(), est.score(X, y), est.plot()["network"]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sympy as sp
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from kandisc import estimator_state
from kandisc.errors import DataError, KandiscError
from kandisc.io.config import KandiscConfig, load_config, validate_config

# Constructor keyword -> dotted key of the config it sets (None: keep the config's value).
CONFIG_KEYS = {
    "seed": "seed",
    "device": "device",
    "threads": "threads",
    "test_fraction": "data.test_fraction",
    "standardize": "data.standardize",
    "dropna": "data.dropna",
    "functions": "functions",
    "auxiliary": "auxiliary",
    "modules": "modules",
    "prior": "prior",
    "width": "model.width",
    "grid": "model.grid",
    "k": "model.k",
    "mult_arity": "model.mult_arity",
    "base_fun": "model.base_fun",
    "dtype": "model.dtype",
    "pipeline": "pipeline",
    "time_budget": "search.time_budget",
    "jobs": "search.jobs",
    "accept_r2": "search.accept_r2",
    "candidates": "search.candidates",
    "seeds": "search.seeds",
    "stop_when_exact": "search.stop_when_exact",
}


class KANRegressor(RegressorMixin, BaseEstimator):
    """Find formulas for y(X) with a MultKAN: train, prune, symbolify (or the discovery search).

    ``config``: YAML path, mapping or ``KandiscConfig``; the keywords of :data:`CONFIG_KEYS`
    override it (``pipeline=None`` keeps the config's, and the default config searches).
    ``variable_names`` / ``target_names`` name the columns (default: a data frame's columns, else
    x0, x1, ... and y or y0, y1, ...). ``run_dir``: also write the CLI's run directory there.
    ``verbosity``: 0 silent, 1 a progress bar (rich, in terminals and Jupyter) or log lines.
    """

    def __init__(
        self,
        config=None,
        *,
        seed=None,
        device=None,
        threads=None,
        test_fraction=None,
        standardize=None,
        dropna=None,
        functions=None,
        auxiliary=None,
        modules=None,
        prior=None,
        width=None,
        grid=None,
        k=None,
        mult_arity=None,
        base_fun=None,
        dtype=None,
        pipeline=None,
        time_budget=None,
        jobs=None,
        accept_r2=None,
        candidates=None,
        seeds=None,
        stop_when_exact=None,
        variable_names=None,
        target_names=None,
        run_dir=None,
        overwrite=False,
        verbosity=1,
    ):
        # scikit-learn's contract: store the arguments as given; validation waits for fit.
        self.config = config
        self.seed, self.device, self.threads = seed, device, threads
        self.test_fraction, self.standardize, self.dropna = test_fraction, standardize, dropna
        self.functions, self.auxiliary, self.modules, self.prior = functions, auxiliary, modules, prior
        self.width, self.grid, self.k, self.mult_arity = width, grid, k, mult_arity
        self.base_fun, self.dtype, self.pipeline = base_fun, dtype, pipeline
        self.time_budget, self.jobs, self.accept_r2 = time_budget, jobs, accept_r2
        self.candidates, self.seeds, self.stop_when_exact = candidates, seeds, stop_when_exact
        self.variable_names, self.target_names = variable_names, target_names
        self.run_dir, self.overwrite, self.verbosity = run_dir, overwrite, verbosity

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # ------------------------------------------------------------ fitting

    def resolved_config(self) -> KandiscConfig:
        """The config this estimator fits with: ``config`` with the keywords set on top, validated."""
        raw = load_config(self.config).model_dump()
        for name, key in CONFIG_KEYS.items():
            value = getattr(self, name)
            if value is not None:
                *sections, leaf = key.split(".")
                node = raw
                for section in sections:
                    node = node[section]
                node[leaf] = value
        return validate_config(raw, type(self).__name__)

    def fit(self, X, y):
        """Fit on X (rows × inputs) and y (rows, or rows × targets); returns self."""
        from kandisc.fitting import fit_prepared
        from kandisc.io.data import table_from_arrays
        from kandisc.pipeline.runner import prepare_table

        cfg = self.resolved_config()
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = validate_data(self, X, ensure_all_finite=False, dtype=np.float64)
        Y = check_array(y, ensure_2d=False, ensure_all_finite=False, dtype=np.float64, input_name="y")
        target_names = self._target_names(y, 1 if Y.ndim == 1 else Y.shape[1])
        table = table_from_arrays(X, Y, self._input_names(X.shape[1]), target_names, cfg.data.dropna, "X, y")
        prep = prepare_table(table, cfg)
        with estimator_state.progress_sink(self.verbosity, cfg.output.log_every) as sink:
            argv = [f"{type(self).__name__}.fit"]
            result = fit_prepared(prep, self.run_dir, self.overwrite, sink, argv)
        estimator_state.set_fitted(self, estimator_state.fitted_from_result(prep, result, Y.ndim))
        return self

    def _input_names(self, count: int) -> list[str]:
        if self.variable_names is not None:
            return [str(n) for n in self.variable_names]
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{i}" for i in range(count)]

    def _target_names(self, y, width: int) -> list[str]:
        if self.target_names is not None:
            return [self.target_names] if isinstance(self.target_names, str) else [str(n) for n in self.target_names]
        if isinstance(y, pd.DataFrame):
            return [str(c) for c in y.columns]
        if isinstance(y, pd.Series) and isinstance(y.name, str):
            return [y.name]
        return ["y"] if width == 1 else [f"y{i}" for i in range(width)]

    # ------------------------------------------------------------ using the fit

    @property
    def model_(self):
        """The fitted MultKAN (a torch module, in model space: see ``bundle_.normalization``)."""
        check_is_fitted(self)
        return self.bundle_.model

    def _checked(self, X) -> np.ndarray:
        """X checked against the fit: as many columns (and the same names, for a data frame), finite."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        if not np.isfinite(X).all():
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            raise DataError(f"X: {len(bad)} rows with NaN/inf values (first: row {bad[0]}); remove or fill them")
        return X

    def _rows(self, X) -> np.ndarray:
        """X as raw model inputs (the kept data columns and auxiliary features, in the model's order)."""
        from kandisc.predict import model_inputs

        X = self._checked(X)
        return model_inputs(self.bundle_, {name: X[:, i] for i, name in enumerate(self.input_names_)})

    def predict(self, X, formula: bool = False) -> np.ndarray:
        """Predictions of the network (``formula=True``: of each target's best formula)."""
        check_is_fitted(self)
        if formula:
            from kandisc.knowledge.formula import evaluate_rows

            X = self._checked(X)
            pred = np.column_stack([evaluate_rows(self.sympy(t), self.input_names_, X) for t in self.target_names_])
        else:
            pred = self.bundle_.predict(torch.as_tensor(self._rows(X))).cpu().numpy()
        return pred[:, 0] if self.y_ndim_ == 1 else pred

    def sympy(self, target: str | None = None, index: int | None = None) -> sp.Expr:
        """The best formula of ``target`` (or its ``index``-th Pareto candidate) in X's columns."""
        from kandisc.knowledge.formula import parse_formula

        check_is_fitted(self)
        target = self._target(target)
        rows = self.formulas_[self.formulas_["target"] == target]
        if index is None:
            rows = rows[rows["is_best"]]
            index = 0
        if not -len(rows) <= index < len(rows):
            raise KandiscError(
                f"no formula {index} for {target}: it has {len(rows)} candidate(s) (formulas_ lists them)"
                + ("; an edge stayed a spline" if not len(rows) else "")
            )
        expr = parse_formula(rows.iloc[index]["sympy"], self.model_inputs_)
        if self.bundle_.auxiliary:
            from kandisc.knowledge.auxiliary import substitute_auxiliary

            expr = substitute_auxiliary(expr, estimator_state.aux_exprs(self))
        return expr

    def latex(self, target: str | None = None, index: int | None = None) -> str:
        """:meth:`sympy` as LaTeX."""
        return sp.latex(self.sympy(target, index))

    def _target(self, target: str | None) -> str:
        if target is None:
            if len(self.target_names_) > 1:
                raise KandiscError(f"several targets ({', '.join(self.target_names_)}); pass target=")
            return self.target_names_[0]
        if target not in self.target_names_:
            raise KandiscError(f"unknown target {target!r}; targets: {', '.join(self.target_names_)}")
        return target

    def explain(self, X=None):
        """Importances, structure and formulas (:class:`kandisc.explain.ExplainResult`), on X or
        on the training rows kept with the model; nothing is written."""
        from kandisc.explain import explain_bundle

        rows, source = self._reference(X)
        return explain_bundle(self.bundle_, rows, source)[0]

    def _reference(self, X) -> tuple[torch.Tensor, str]:
        check_is_fitted(self)
        if X is not None:
            return torch.as_tensor(self._rows(X)), "X"
        if "reference_x" not in self.bundle_.tensors:
            raise estimator_state.missing_reference()
        return self.bundle_.tensors["reference_x"], "training rows stored with the model"

    def plot(self, which: str | None = None, X=None, y=None):
        """Figures, without writing files: a dict name -> matplotlib figure (network, loss,
        attribution, pred_vs_true, pareto), or the one named by ``which``. With X and y,
        pred_vs_true shows them; otherwise the held-out rows of the fit (when known)."""
        from kandisc.explain import explain_bundle
        from kandisc.pipeline.figures import draw_figures

        rows, source = self._reference(X)
        result, scores = explain_bundle(self.bundle_, rows, source)
        y_test, pred, sources = estimator_state.heldout(self, X, y)
        candidates = {t: g.to_dict("records") for t, g in self.formulas_.groupby("target", sort=False)}
        x_model = self.bundle_.to_model_space(rows.to(self.bundle_.model.dtype))
        figures = draw_figures(
            self.bundle_, x_model, scores, result.pruned_inputs, self.metrics_, y_test, pred, sources, candidates
        )
        if which is None:
            return figures
        if which not in figures:
            raise KandiscError(f"no figure {which!r}; this fit has: {', '.join(figures)}")
        return figures[which]

    # ------------------------------------------------------------ files and pickling

    def save(self, path):
        """Write the fitted estimator as a kandisc model file (``kandisc predict`` reads it too)."""
        check_is_fitted(self)
        return estimator_state.save(self, path)

    @classmethod
    def load(cls, path) -> KANRegressor:
        """An estimator from :meth:`save`'s file (or any kandisc model file)."""
        return estimator_state.load(cls, path)

    @classmethod
    def from_run(cls, run_dir) -> KANRegressor:
        """The fitted estimator of a ``kandisc fit`` run directory."""
        return estimator_state.from_run(cls, run_dir)

    def __getstate__(self):
        return estimator_state.getstate(self, super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(estimator_state.setstate(state))
