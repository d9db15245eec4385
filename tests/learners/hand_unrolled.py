"""Each learner's objective written out by hand in numpy (float64), from its
paper's equations, with the inner loop unrolled step by step and the softmax
cross-entropy gradient written explicitly: the reference the learners'
autograd gradients are checked against, by central finite differences."""

import numpy

EPS = 1e-6


def normalize(x):
    return x / numpy.linalg.norm(x, axis=1, keepdims=True)


def one_hot(labels, n):
    return numpy.eye(n)[labels]


def cross_entropy(logits, labels):
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - numpy.log(numpy.exp(shifted).sum(1, keepdims=True))
    return -log_p[numpy.arange(len(labels)), labels].mean()


def softmax(logits):
    e = numpy.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def prototypes(support, labels, n):
    return numpy.stack([normalize(support)[labels == k].mean(0) for k in range(n)])


def protonet_loss(support, labels, query, query_labels, log_scale):
    """Snell et al. eq. 1-2 with cosine similarity and a temperature."""
    n = labels.max() + 1
    logits = numpy.exp(log_scale) * normalize(query) @ normalize(prototypes(support, labels, n)).T
    return cross_entropy(logits, query_labels)


def matching_loss(support, labels, query, query_labels, log_scale):
    """Vinyals et al. eq. 1-2: P(y|x) = sum_i softmax_i(s cos(x, x_i)) y_i."""
    n = labels.max() + 1
    attention = softmax(numpy.exp(log_scale) * normalize(query) @ normalize(support).T)
    probs = attention @ one_hot(labels, n)
    return -numpy.log(probs[numpy.arange(len(query_labels)), query_labels]).mean()


def sgd_steps(weight, bias, support, labels, step_sizes, steps, frozen=None):
    """k steps of gradient descent on the support cross-entropy of
    normalize(x) @ W.T + b, the gradient written out: dL/dlogits = (p - y) / n.
    `frozen` replaces each step's gradient by a given one (first order).
    RETURNS: the final (W, b) and the list of gradients used."""
    x = normalize(support)
    y = one_hot(labels, weight.shape[0])
    grads = []
    for i in range(steps):
        if frozen is None:
            d_logits = (softmax(x @ weight.T + bias) - y) / len(labels)
            g_w, g_b = d_logits.T @ x, d_logits.sum(0)
        else:
            g_w, g_b = frozen[i]
        grads.append((g_w, g_b))
        weight = weight - step_sizes[0] * g_w
        bias = bias - step_sizes[1] * g_b
    return weight, bias, grads


def maml_loss(support, labels, query, query_labels, log_inner_lr, steps, frozen=None):
    """Finn et al.: L_query(theta - alpha grad L_support(theta)), from zeros."""
    n, dim = labels.max() + 1, support.shape[1]
    weight, bias, _ = sgd_steps(
        numpy.zeros((n, dim)), numpy.zeros(n), support, labels, numpy.exp(log_inner_lr),
        steps, frozen,
    )  # fmt: skip
    return cross_entropy(normalize(query) @ weight.T + bias, query_labels)


def proto_start(support, labels, log_scale):
    n = labels.max() + 1
    weight = numpy.exp(log_scale) * normalize(prototypes(support, labels, n))
    return weight, numpy.zeros(n)


def proto_maml_loss(
    support, labels, query, query_labels, log_scale, log_inner_lr, steps, frozen=None
):
    """Triantafillou et al.: MAML from the prototypes' linear head."""
    weight, bias = proto_start(support, labels, log_scale)
    weight, bias, _ = sgd_steps(
        weight, bias, support, labels, numpy.exp(log_inner_lr), steps, frozen
    )
    return cross_entropy(normalize(query) @ weight.T + bias, query_labels)


def reptile_objective(support, labels, log_scale, log_inner_lr, phi):
    """0.5 |theta - phi|^2 / alpha with phi constant: its gradient w.r.t.
    theta is (theta - phi) / alpha, Nichol et al.'s update direction."""
    weight, bias = proto_start(support, labels, log_scale)
    alpha = numpy.exp(log_inner_lr)
    return 0.5 * (
        ((weight - phi[0]) ** 2).sum() / alpha[0] + ((bias - phi[1]) ** 2).sum() / alpha[1]
    )


def numeric_gradient(function, x):
    """Central finite differences of a scalar function of the array x."""
    grad = numpy.zeros_like(x)
    for index in numpy.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += EPS
        minus[index] -= EPS
        grad[index] = (function(plus) - function(minus)) / (2 * EPS)
    return grad
