"""Linear probes on activations, and the classic sweep of probe accuracy over layers.

``LinearProbe(features, labels, regularization)`` fits logistic regression by minimising

    mean_i cross_entropy(softmax(W x_i + b), y_i) + regularization / 2 * ||W||^2   (b not penalised)

which is scikit-learn's ``LogisticRegression(C=1 / (regularization * n))``: scikit-learn
minimises ``C * sum_i loss_i + ||W||^2 / 2``, the same objective times ``C * n``. As its lbfgs
solver does, two classes get binary logistic regression (one weight row, class 1's logit
``w . x + b`` against class 0's 0) and more classes the multinomial softmax.

The solver is L-BFGS (Nocedal & Wright, *Numerical Optimization*, 2nd ed., algorithms 7.4 and
7.5) on the Tensor API alone, so it runs on every backend, a stdlib-only Pyodide included:

* features are centred and given a bias column (exact, since the bias is not penalised; the
  bias is mapped back at the end), and the initial inverse Hessian is the diagonal
  ``1 / (0.25 * E[x_j^2] + regularization)``, so badly scaled features (a residual stream's
  outlier dimensions) do not slow it down;
* the two-loop recursion keeps its scalars on the device; only the line search reads scalars
  back (a few per iteration). Along a direction p the logits are ``Z + alpha * X p``, so each
  trial step costs elementwise work, not a matmul;
* the line search brackets a step meeting the Wolfe conditions, or Hager & Zhang's (2005)
  approximate Wolfe conditions, which use only slopes: near the optimum float32 losses stop
  resolving the decrease, slopes still do;
* it stops when the largest gradient entry, in units of each feature's standard deviation
  (the gradient scikit-learn would see on standardised features), is at most ``tol``.

Shapes: n examples, d features, k classes, m weight rows (1 for two classes, else k),
d1 = d + 1 (features and the bias column).
"""

import math
import random
import warnings

from ..args import as_layer
from ..errors import NeuroScopeError, ShapeError
from ..progress import progress_reporter
from ..tensor import Tensor, as_tensor, cat, ones, where, zeros

SPEC_TYPE = "linear_probe"
SPEC_VERSION = 1
_HISTORY = 10  # L-BFGS correction pairs kept
_ARMIJO, _CURVATURE, _APPROXIMATE = 1e-4, 0.9, 0.1  # c1, c2 (Wolfe) and Hager-Zhang's delta
_LOSS_SLACK = 1e-6  # relative loss increase allowed with the approximate Wolfe conditions


class ProbeError(NeuroScopeError, ValueError):
    """Probe inputs that cannot be fitted: mismatched lengths, one class, non-finite features."""


class ProbeConvergenceWarning(UserWarning):
    """``LinearProbe.train`` stopped before the gradient reached ``tol``."""


class LinearProbe:
    """A logistic-regression probe from activations ``input [n, d]`` to ``labels`` (n of them).

    ``labels`` are ints or any hashable class labels (a list, an array or a Tensor);
    ``classes`` holds them sorted (the columns of ``predict_proba``), as scikit-learn orders
    them. ``train()`` fits; ``weights [m, d]`` and ``bias [m]`` then give the logits
    ``x @ weights.T + bias`` (for two classes, the logit of ``classes[1]`` over ``classes[0]``).
    ``direction`` is that weight vector ``[d]`` for two classes (what W[1] - W[0] would be in a
    two-class softmax), and the ``[k, d]`` class weights otherwise.
    A probe is usable as ``ProbeHook(layer, component, probe=probe)``: the hook calls
    ``predict`` on each activation ``[..., d]``.
    """

    def __init__(self, input, labels, regularization=0.01):
        features = _as_features(input, "input")
        labels = _as_labels(labels)
        if len(labels) != features.shape[0]:
            raise ProbeError(f"{len(labels)} labels for {features.shape[0]} examples of input "
                             f"{list(features.shape)}; expected one label per row")
        classes = _classes(labels)
        if len(classes) < 2:
            raise ProbeError(f"every label is {classes[0]!r}; a probe needs at least two classes")
        regularization = float(regularization)
        if not regularization > 0 or not math.isfinite(regularization):
            raise ProbeError(f"regularization={regularization!r}; expected a finite number > 0")
        _check_finite(features, "input")
        self.features, self.labels, self.classes = features, labels, classes
        self.regularization = regularization
        self.weights = self.bias = None
        self.n_iter, self.converged, self.loss, self.gradient_max = 0, False, None, None

    # -- fitting ---------------------------------------------------------------
    def train(self, max_iter=1000, tol=1e-6):
        """Fit by L-BFGS until the standardised gradient's largest entry is <= ``tol``; returns self."""
        if self.features is None:
            raise ProbeError("this probe was loaded from a spec and has no training data; build a "
                             "LinearProbe(input, labels) to train")
        index = {label: i for i, label in enumerate(self.classes)}
        targets = as_tensor([index[label] for label in self.labels], backend=self.features.backend)
        problem = _Objective(self.features, targets, len(self.classes), self.regularization)
        theta, result = _minimise(problem, max_iter, tol)
        self.weights, self.bias = problem.unpack(theta)
        self.n_iter, self.converged, self.loss, self.gradient_max = result
        if not self.converged:
            warnings.warn(f"LinearProbe stopped after {self.n_iter} iterations with a standardised "
                          f"gradient of {self.gradient_max:.3g} > tol={tol:g}; raise max_iter or tol",
                          ProbeConvergenceWarning, stacklevel=2)
        return self

    # -- using a trained probe -----------------------------------------------------
    @property
    def binary(self):
        return len(self.classes) == 2

    @property
    def direction(self):
        """The weight vector ``[d]`` (two classes) or the class weights ``[k, d]``."""
        weights = self._trained()[0]
        return weights[0] if self.binary else weights

    def logits(self, x):
        """``x [..., d]`` -> class logits ``[..., k]`` (class 0's logit is 0 for two classes)."""
        weights, bias = self._trained()
        x = _as_features(x, "x", weights.shape[1], any_rank=True)
        if x.backend is not weights.backend:
            weights = as_tensor(weights.tolist(), backend=x.backend)
            bias = as_tensor(bias.tolist(), backend=x.backend)
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])  # [n, d]
        logits = flat @ weights.T + bias  # [n, m]
        if self.binary:
            logits = cat([zeros((flat.shape[0], 1), backend=x.backend), logits], axis=1)  # [n, 2]
        return logits.reshape(lead + (len(self.classes),))

    def predict_proba(self, x):
        """Class probabilities ``[..., k]`` (columns in ``classes`` order)."""
        return self.logits(x).softmax(-1)

    def predict(self, x):
        """The most likely class of each row of ``x [..., d]``: a list (nested for ``[b, p, d]``)."""
        best = self.logits(x).argmax(-1).tolist()
        return _map_nested(best, self.classes)

    def __call__(self, x):
        return self.predict_proba(x)

    def evaluate(self, x, labels):
        """Metrics on ``x [n, d]`` with true ``labels``: a dict of ``accuracy``, ``loss`` (mean
        cross-entropy), per-class ``precision``, ``recall`` and ``support`` (lists in ``classes``
        order; 0.0 where undefined, as scikit-learn reports), and ``auc`` for two classes (None
        when ``labels`` hold one class only)."""
        labels = _as_labels(labels)
        logits = self.logits(x)  # [n, k]
        probabilities = logits.softmax(-1)  # [n, k]
        if probabilities.ndim != 2 or probabilities.shape[0] != len(labels):
            raise ProbeError(f"{len(labels)} labels for x of shape {list(probabilities.shape[:-1])}"
                             f" (+ features); expected [n, d] with n = {len(labels)}")
        index = {label: i for i, label in enumerate(self.classes)}
        unknown = [label for label in labels if label not in index]
        if unknown:
            raise ProbeError(f"label {unknown[0]!r} is not one of the probe's classes {self.classes}")
        truth = [index[label] for label in labels]
        predicted = probabilities.argmax(-1).tolist()
        # from the logits: float32 probabilities round to 1.0 (or 0.0) past a logit gap of ~17
        # (~104), which tied different scores in the AUC and capped the loss
        log_rows, logit_rows = logits.log_softmax(-1).tolist(), logits.tolist()
        k, n = len(self.classes), len(truth)
        hits = [0] * k
        chosen, support = [predicted.count(c) for c in range(k)], [truth.count(c) for c in range(k)]
        for t, p in zip(truth, predicted):
            hits[t] += t == p
        metrics = {
            "accuracy": sum(hits) / n, "n": n, "classes": list(self.classes),
            "loss": -sum(row[t] for row, t in zip(log_rows, truth)) / n,
            "precision": [hits[c] / chosen[c] if chosen[c] else 0.0 for c in range(k)],
            "recall": [hits[c] / support[c] if support[c] else 0.0 for c in range(k)],
            "support": support,
        }
        if self.binary:
            metrics["auc"] = _auc([row[1] - row[0] for row in logit_rows], truth)
        return metrics

    def _trained(self):
        if self.weights is None:
            raise ProbeError("this probe is not trained yet; call probe.train() first")
        return self.weights, self.bias

    # -- specs -----------------------------------------------------------------------
    def to_spec(self):
        """A JSON-able dict of the trained probe (classes, weights, bias, how it was fitted)."""
        weights, bias = self._trained()
        for label in self.classes:
            if not isinstance(label, (str, int, float, bool)):
                raise TypeError(f"class label {label!r} is not a JSON scalar (str, int, float or bool),"
                                " so the probe cannot serialise")
        return {"type": SPEC_TYPE, "version": SPEC_VERSION, "classes": list(self.classes),
                "weights": weights.tolist(), "bias": bias.tolist(),
                "regularization": self.regularization, "n_iter": self.n_iter,
                "converged": self.converged}

    @classmethod
    def from_spec(cls, spec, backend=None):
        """The trained probe of ``to_spec()`` (it predicts; it holds no training data)."""
        if not isinstance(spec, dict) or spec.get("type") != SPEC_TYPE:
            raise ProbeError(f"a probe spec is a dict with type {SPEC_TYPE!r}, got {spec!r:.200}")
        if spec.get("version") != SPEC_VERSION:
            raise ProbeError(f"probe spec version {spec.get('version')!r}; this NeuroScope reads "
                             f"version {SPEC_VERSION}")
        classes, weights, bias = list(spec["classes"]), spec["weights"], spec["bias"]
        rows = 1 if len(classes) == 2 else len(classes)
        if len(classes) < 2 or len(weights) != rows or len(bias) != rows:
            raise ProbeError(f"probe spec with {len(classes)} classes, {len(weights)} weight rows and "
                             f"{len(bias)} biases; expected {rows} of each for {len(classes)} classes")
        probe = cls.__new__(cls)
        probe.features = probe.labels = None
        probe.classes, probe.regularization = classes, float(spec["regularization"])
        probe.weights = as_tensor(weights, dtype="float32", backend=backend)
        probe.bias = as_tensor(bias, dtype="float32", backend=backend)
        probe.n_iter, probe.converged = int(spec.get("n_iter", 0)), bool(spec.get("converged", True))
        probe.loss = probe.gradient_max = None
        return probe

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        state = f"trained in {self.n_iter} iterations" if self.weights is not None else "not trained"
        d = self.weights.shape[1] if self.weights is not None else self.features.shape[1]
        return (f"LinearProbe({len(self.classes)} classes, d={d}, regularization={self.regularization:g},"
                f" {state})")


# -- the objective and its solver ------------------------------------------------------
class _Objective:
    """Mean cross-entropy + penalty over ``theta [m, d1]`` on centred features with a bias column."""

    def __init__(self, features, targets, n_classes, regularization):
        n, d = features.shape
        backend = features.backend
        self.n, self.d, self.regularization = n, d, regularization
        self.binary = n_classes == 2
        self.rows = 1 if self.binary else n_classes
        self.mean = features.mean(axis=0, keepdims=True)  # [1, d]
        self.inputs = cat([features - self.mean, ones((n, 1), backend=backend)], axis=1)  # [n, d1]
        onehot = targets.unsqueeze(1).eq(_arange_row(n_classes, backend)).float()  # [n, k]
        self.targets = onehot
        self.target_rows = onehot[:, 1:] if self.binary else onehot  # [n, m]
        self.zero_column = zeros((n, 1), backend=backend) if self.binary else None
        self.mask = cat([ones((1, d), backend=backend), zeros((1, 1), backend=backend)], axis=1)  # [1, d1]
        second_moment = self.inputs.square().mean(axis=0, keepdims=True)  # [1, d1]
        self.inverse_curvature = 1.0 / (second_moment * 0.25 + self.mask * regularization)  # [1, d1]
        self.scale = second_moment.sqrt()  # each column's std; 1 for the bias column
        counts = onehot.sum(axis=0).tolist()
        log_prior = [math.log(c / n) for c in counts]
        start = [log_prior[1] - log_prior[0]] if self.binary else [v - sum(log_prior) / n_classes
                                                                   for v in log_prior]
        self.start = cat([zeros((self.rows, d), backend=backend),
                          as_tensor([[v] for v in start], dtype="float32", backend=backend)], axis=1)

    def logits(self, theta):
        return self.inputs @ theta.T  # [n, m]

    def _full(self, logits):
        return cat([self.zero_column, logits], axis=1) if self.binary else logits  # [n, k]

    def _residual(self, logits):
        """(softmax - onehot [n, m], cross-entropy per example [n]), both accurate for confident
        examples: 1 - p_true is summed from the other classes' probabilities, not subtracted."""
        full = self._full(logits)  # [n, k]
        others = full.softmax(-1) * (1.0 - self.targets)  # [n, k]: p_j off the true class, else 0
        rest = others.sum(axis=-1, keepdims=True)  # [n, 1]: 1 - p_true
        residual = others - self.targets * rest  # [n, k]
        # -log p_true = -log(1 - rest): its series below 1e-3 (error < rest^4 / 4), else log_softmax
        series = rest * (1.0 + rest * (0.5 + rest * (1.0 / 3.0)))
        direct = -(self.targets * full.log_softmax(-1)).sum(axis=-1, keepdims=True)
        entropy = where(rest < 1e-3, series, direct)  # [n, 1]
        return (residual[:, 1:] if self.binary else residual), entropy

    def gradient(self, theta, logits):
        residual, _ = self._residual(logits)  # [n, m]
        data = residual.T @ self.inputs  # [m, d1]
        return data * (1.0 / self.n) + theta * self.mask * self.regularization

    def line(self, logits, step_logits, alpha):
        """(cross-entropy, its slope along the step) at ``logits + alpha * step_logits``: host floats."""
        residual, entropy = self._residual(logits + step_logits * alpha if alpha else logits)
        slope = (residual * step_logits).sum() * (1.0 / self.n)
        value, derivative = cat([entropy.mean().reshape(1), slope.reshape(1)]).tolist()
        return value, derivative

    def unpack(self, theta):
        """``theta`` on centred features -> (weights [m, d], bias [m]) on the original ones."""
        weights = theta[:, :self.d]
        bias = theta[:, self.d] - (weights @ self.mean.T).reshape(self.rows)
        if not self.binary:  # softmax ignores a shift shared by all classes: centre the biases
            bias = bias - bias.mean()
        return weights, bias


def _minimise(problem, max_iter, tol):
    """L-BFGS from ``problem.start``; returns theta and (iterations, converged, loss, gradient max)."""
    reg = problem.regularization
    theta = problem.start
    logits = problem.logits(theta)
    gradient = problem.gradient(theta, logits)
    entropy, _ = problem.line(logits, logits, 0.0)
    loss = entropy + 0.5 * reg * _dot(theta * problem.mask, theta).item()
    gradient_max, logit_max = cat([(gradient * problem.scale).abs().max().reshape(1),
                                   logits.abs().max().reshape(1)]).tolist()
    history, gamma, iteration, restarted = [], 1.0, 0, False
    while gradient_max > tol and iteration < max_iter:
        step = _two_loop(gradient, history, problem.inverse_curvature * gamma)
        masked_theta, masked_step = theta * problem.mask, step * problem.mask
        slope, cross, square = cat([_dot(gradient, step).reshape(1), _dot(masked_theta, step).reshape(1),
                                    _dot(masked_step, step).reshape(1)]).tolist()
        alpha = None
        if slope < 0:
            step_logits = problem.logits(step)
            # the penalty along the line, reg / 2 ||M (theta + a p)||^2, is a quadratic in a
            penalty = (0.5 * reg * _dot(masked_theta, theta).item(), reg * cross, 0.5 * reg * square)
            # float32 logits carry an absolute error of ~1e-7 |z|, so the loss a relative one
            slack = _LOSS_SLACK * abs(loss) * max(1.0, logit_max)
            alpha, new_loss = _line_search(problem, logits, step_logits, loss, slope, penalty, slack)
        if alpha is None:
            if restarted or not history:
                break  # no descent left at float32 resolution
            history, gamma, restarted = [], 1.0, True  # retry along the preconditioned gradient
            continue
        restarted = False
        new_theta = theta + step * alpha
        logits = problem.logits(new_theta)
        new_gradient = problem.gradient(new_theta, logits)
        moved, change = new_theta - theta, new_gradient - gradient
        theta, gradient, loss, iteration = new_theta, new_gradient, new_loss, iteration + 1
        curvature, weighted, gradient_max, logit_max = cat([
            _dot(moved, change).reshape(1), _dot(change * problem.inverse_curvature, change).reshape(1),
            (gradient * problem.scale).abs().max().reshape(1), logits.abs().max().reshape(1)]).tolist()
        if curvature > 1e-12 * max(weighted, 1e-30):
            history.append((moved, change, 1.0 / curvature))
            history = history[-_HISTORY:]
            gamma = curvature / weighted
    return theta, (iteration, gradient_max <= tol, loss, gradient_max)


def _two_loop(gradient, history, inverse_curvature):
    """``-H g`` for the L-BFGS inverse Hessian H built on ``inverse_curvature`` (a diagonal)."""
    direction, alphas = gradient, []
    for moved, change, rho in reversed(history):
        alpha = _dot(moved, direction) * rho  # [1, 1], kept on the device
        alphas.append(alpha)
        direction = direction - change * alpha
    direction = direction * inverse_curvature
    for (moved, change, rho), alpha in zip(history, reversed(alphas)):
        beta = _dot(change, direction) * rho
        direction = direction + moved * (alpha - beta)
    return -direction


def _line_search(problem, logits, step_logits, loss, slope, penalty, slack, trials=40):
    """A step meeting the (approximate) Wolfe conditions, and the loss there; (None, None) if none.
    ``penalty``: the coefficients (c0, c1, c2) of the penalty c0 + c1 a + c2 a^2 at step a;
    ``slack``: the loss increase the approximate Wolfe conditions allow (Hager & Zhang's eps |f|)."""
    constant, linear, quadratic = penalty
    low, high, low_slope, high_slope, alpha = 0.0, math.inf, slope, None, 1.0
    for _ in range(trials):
        entropy, entropy_slope = problem.line(logits, step_logits, alpha)
        value = entropy + constant + alpha * (linear + alpha * quadratic)
        derivative = entropy_slope + linear + 2.0 * alpha * quadratic
        if not (math.isfinite(value) and math.isfinite(derivative)):
            high, high_slope = alpha, None
        else:
            wolfe = value <= loss + _ARMIJO * alpha * slope and derivative >= _CURVATURE * slope
            approximate = (value <= loss + slack and
                           _CURVATURE * slope <= derivative <= (2 * _APPROXIMATE - 1) * slope)
            if wolfe or approximate:
                return alpha, value
            if derivative > 0 or value > loss + slack:
                high, high_slope = alpha, derivative  # past the minimum along the line
            else:
                low, low_slope = alpha, derivative  # still steep: go further
        if high == math.inf:
            alpha *= 4.0
            continue
        width = high - low
        if high_slope is not None and high_slope > low_slope:  # the slope's zero, by the secant
            guess = low - low_slope * width / (high_slope - low_slope)
            alpha = min(max(guess, low + 0.1 * width), high - 0.1 * width)
        else:
            alpha = low + 0.5 * width
        if width <= 1e-10 * max(high, 1.0):
            break
    return None, None


def _dot(a, b):
    return (a * b).sum(keepdims=True).reshape(1, 1)  # [1, 1]


def _arange_row(k, backend):
    return as_tensor([list(range(k))], backend=backend)  # [1, k]


# -- argument checks -------------------------------------------------------------------
def _as_features(x, what, d=None, any_rank=False):
    if not isinstance(x, Tensor):
        x = as_tensor(x, dtype="float32")
    elif x.dtype != "float32":
        x = x.float()
    if (x.ndim < 1 if any_rank else x.ndim != 2) or x.size == 0:
        expected = "[..., d]" if any_rank else "[n, d] (one row per example)"
        raise ShapeError(f"{what} has shape {list(x.shape)}; expected a non-empty {expected}")
    if d is not None and x.shape[-1] != d:
        raise ShapeError(f"{what} has {x.shape[-1]} features (shape {list(x.shape)}); the probe was "
                         f"trained on {d}")
    return x


def _as_labels(labels):
    if isinstance(labels, Tensor) or hasattr(labels, "tolist"):
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise ProbeError(f"labels={labels!r:.80}; expected a list, array or Tensor with one label "
                         "per example")
    # numpy scalars (a list of them, or rows of an object array) become plain Python values
    labels = [label.item() if hasattr(label, "item") and not isinstance(label, (str, bytes)) else label
              for label in labels]
    for label in labels:
        if isinstance(label, (list, dict, set)) or isinstance(label, float) and math.isnan(label):
            raise ProbeError(f"label {label!r} cannot name a class; expected ints or hashable labels "
                             "(labels must be one-dimensional)")
    return labels


def _classes(labels):
    distinct = list(dict.fromkeys(labels))
    try:
        return sorted(distinct)
    except TypeError:  # mixed types: keep the order of first appearance
        return distinct


def _check_finite(features, what):
    if math.isfinite((features * 0.0).sum().item()):  # 0 * nan and 0 * inf are nan
        return
    row_checks = (features * 0.0).sum(axis=1).tolist()
    bad = [i for i, v in enumerate(row_checks) if not math.isfinite(v)]
    raise ProbeError(f"{what} has NaN or infinite values in {len(bad)} of {len(row_checks)} rows "
                     f"(first: row {bad[0]}); expected finite features")


def _map_nested(indices, classes):
    if isinstance(indices, list):
        return [_map_nested(i, classes) for i in indices]
    return classes[indices]


def _auc(scores, truth):
    """Area under the ROC curve of ``scores`` for class 1 (Mann-Whitney, ties averaged)."""
    positives = sum(truth)
    negatives = len(truth) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum, start = 0.0, 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        average_rank = (start + end) / 2 + 1
        rank_sum += average_rank * sum(truth[order[i]] for i in range(start, end + 1))
        start = end + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


# -- the sweep over layers --------------------------------------------------------------
class ProbeSweep:
    """Probe accuracy per layer: ``layers[i]`` -> ``train_accuracy[i]``, ``test_accuracy[i]``
    (None without a test split); ``probes[i]`` is the trained ``LinearProbe`` of that layer;
    ``train_rows`` and ``test_rows`` are the dataset rows of each split."""

    def __init__(self, component, position, layers, train_accuracy, test_accuracy, probes, classes,
                 train_rows, test_rows, regularization):
        self.component, self.position, self.layers = component, position, list(layers)
        self.train_accuracy, self.test_accuracy = list(train_accuracy), list(test_accuracy)
        self.probes, self.classes = list(probes), list(classes)
        self.train_rows, self.test_rows = list(train_rows), list(test_rows)
        self.regularization = regularization

    @property
    def n_train(self):
        return len(self.train_rows)

    @property
    def n_test(self):
        return len(self.test_rows)

    @property
    def accuracy(self):
        """Test accuracy per layer, or train accuracy when there is no test split."""
        return self.test_accuracy if self.n_test else self.train_accuracy

    @property
    def best_layer(self):
        return self.layers[max(range(len(self.layers)), key=self.accuracy.__getitem__)]

    def to_dict(self, include_probes=False):
        """Plain lists, strings and numbers (JSON for the app and share links); with
        ``include_probes`` each layer's probe spec too."""
        table = {"component": self.component, "position": self.position, "layers": self.layers,
                 "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                 "classes": self.classes, "n_train": self.n_train, "n_test": self.n_test,
                 "regularization": self.regularization}
        if include_probes:
            table["probes"] = [probe.to_spec() for probe in self.probes]
        return table

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        best = self.best_layer
        score = self.accuracy[self.layers.index(best)]
        return (f"ProbeSweep({self.component!r}, {len(self.layers)} layers, best layer {best}: "
                f"accuracy {score:.3f})")


def probe_layers(model, dataset, component, layers="all", labels="label", position="last",
                 regularization=0.01, test_fraction=0.25, seed=0, progress=None, max_iter=1000, tol=1e-6,
                 batch_size=None, cache=True, features=None):
    """Train a ``LinearProbe`` on ``component`` at each layer; a ``ProbeSweep`` of accuracies.

    Features are ``model.activations_at(component, layer, dataset, position=position)``
    (``[n_examples, d]``); ``labels`` is a column of ``dataset`` or a list with one label per
    example. The examples split once, for every layer, into train and test sets: per class,
    ``test_fraction`` of its examples (shuffled with ``seed``) are held out, at least one and
    never all, so both sets hold every class that has two examples or more. ``progress``
    counts layers: None for a bar (the page's in the browser), False for none, or a callable
    ``(done, total)``. ``batch_size`` and ``cache`` go to
    ``activations_at`` (with ``cache=True`` a second sweep reads the activations back).
    ``features``: ``{layer: [n_examples, d] Tensor}`` computed elsewhere (the ``activations``
    task of ``DistributedAnalysis`` with a list of layers); the model then does not run.
    """
    n_layers = model.cfg.n_layers
    if layers is None or (isinstance(layers, str) and layers.lower() == "all"):
        layers = list(range(n_layers))
    else:
        layers = [as_layer(layer, n_layers) for layer in ([layers] if isinstance(layers, int) else layers)]
    if not layers:
        raise ProbeError("layers=[] selects no layer; expected 'all', a layer or a list of layers")
    if position not in ("last", "mean"):
        raise ProbeError(f"position={position!r}; a probe needs one row per example: 'last' or 'mean'")
    if isinstance(labels, str) and not hasattr(dataset, "column"):
        raise ProbeError(f"labels={labels!r} names a column, but {type(dataset).__name__} has no columns;"
                         " pass a neuroscope.Dataset or a list of labels")
    values = _as_labels(dataset.column(labels) if isinstance(labels, str) else labels)
    if len(values) != len(dataset):
        raise ProbeError(f"{len(values)} labels for a dataset of {len(dataset)} examples")
    if not 0 <= test_fraction < 1:
        raise ProbeError(f"test_fraction={test_fraction!r}; expected a fraction in [0, 1)")
    train_rows, test_rows = _split(values, test_fraction, seed)
    train_labels, test_labels = [values[i] for i in train_rows], [values[i] for i in test_rows]
    report = progress_reporter(progress, f"probing {component}")
    train_accuracy, test_accuracy, probes = [], [], []
    report(0, len(layers))
    for done, layer in enumerate(layers, 1):
        if features is not None and layer not in features:
            raise ProbeError(f"features= has layers {sorted(features)}; the sweep needs layer {layer}")
        acts = features[layer] if features is not None else model.activations_at(
            component, layer, dataset, position=position, batch_size=batch_size, cache=cache,
            progress=False)  # [n, d]
        if acts.ndim != 2 or acts.shape[0] != len(values):
            raise ShapeError(f"activations_at({component!r}, {layer}) gave shape {list(acts.shape)};"
                             f" expected [{len(values)}, d] for the dataset's {len(values)} examples")
        train_features = acts.take(train_rows)
        probe = LinearProbe(train_features, train_labels, regularization).train(max_iter, tol)
        probes.append(probe)
        train_accuracy.append(probe.evaluate(train_features, train_labels)["accuracy"])
        test_accuracy.append(probe.evaluate(acts.take(test_rows), test_labels)["accuracy"]
                             if test_rows else None)
        report(done, len(layers))
    return ProbeSweep(component, position, layers, train_accuracy, test_accuracy, probes, probes[0].classes,
                      train_rows, test_rows, regularization)


def _split(labels, test_fraction, seed):
    """(train rows, test rows): ``test_fraction`` of each class, at least one row of it kept to
    train and, when ``test_fraction`` > 0 and it has two rows or more, at least one held out."""
    rng = random.Random(seed)
    by_class = {}
    for row, label in enumerate(labels):
        by_class.setdefault(label, []).append(row)
    train, test = [], []
    for label in _classes(list(by_class)):
        rows = by_class[label]
        rng.shuffle(rows)
        held_out = min(max(round(test_fraction * len(rows)), 1 if test_fraction else 0), len(rows) - 1)
        test.extend(rows[:held_out])
        train.extend(rows[held_out:])
    return sorted(train), sorted(test)
