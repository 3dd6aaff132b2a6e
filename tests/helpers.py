"""Shared test helpers and the parameter lists tests sweep over."""

from __future__ import annotations

import os
import types

import pytest


def import_torch() -> types.ModuleType:
    """PyTorch, the numerical reference.

    Outside CI a parity test is skipped when torch is not installed; in CI (``CI=true``)
    a missing torch fails the test, so parity is never silently skipped there.
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import torch

        return torch
    return pytest.importorskip("torch")


# Every method with its options switched on, built from a learning rate (a number, an
# array, a tracer or a schedule). The contract tests sweep over this list.
def _methods():
    import lrjax

    return {
        "sgd": lambda lr: lrjax.sgd(lr),
        "sgd_nesterov": lambda lr: lrjax.sgd(lr, momentum=0.9, nesterov=True, weight_decay=1e-4),
        "sgd_dampening": lambda lr: lrjax.sgd(lr, momentum=0.8, dampening=0.3),
        "adagrad": lambda lr: lrjax.adagrad(lr, lr_decay=0.01, initial_accumulator_value=0.1),
        "adadelta": lambda lr: lrjax.adadelta(lr, weight_decay=1e-3),
        "rmsprop": lambda lr: lrjax.rmsprop(lr),
        "rmsprop_centered": lambda lr: lrjax.rmsprop(lr, momentum=0.9, centered=True),
        "adam": lambda lr: lrjax.adam(lr),
        "adam_amsgrad": lambda lr: lrjax.adam(lr, weight_decay=1e-3, amsgrad=True),
        "adamw": lambda lr: lrjax.adamw(lr),
    }


METHODS = _methods()
METHOD_NAMES = sorted(METHODS)
