"""lrjax: the learning-rate toolkit for JAX.

Schedules (:mod:`lrjax.schedules`), gradient-descent methods with PyTorch's numerics,
the learning-rate-free methods identical to their authors' code, adapting the rate to the
model's performance, finding a good rate, and seeing what the rate does. Every method is
an ``optax.GradientTransformationExtraArgs``.
"""

from lrjax import schedules as schedules
from lrjax._adapting._hypergradient import HypergradientState as HypergradientState
from lrjax._adapting._hypergradient import adam_hd as adam_hd
from lrjax._adapting._hypergradient import hypergradient as hypergradient
from lrjax._adapting._hypergradient import sgd_hd as sgd_hd
from lrjax._adapting._plateau import ReduceOnPlateauState as ReduceOnPlateauState
from lrjax._adapting._plateau import reduce_on_plateau as reduce_on_plateau
from lrjax._blocks import AddDecayedWeightsState as AddDecayedWeightsState
from lrjax._blocks import ScaleByLearningRateState as ScaleByLearningRateState
from lrjax._blocks import ScaleByScheduleState as ScaleByScheduleState
from lrjax._blocks import add_decayed_weights as add_decayed_weights
from lrjax._blocks import scale_by_learning_rate as scale_by_learning_rate
from lrjax._finding._finder import FinderResult as FinderResult
from lrjax._finding._finder import find_learning_rate as find_learning_rate
from lrjax._finding._mup import MupGroupState as MupGroupState
from lrjax._finding._mup import mup as mup
from lrjax._finding._mup_multipliers import mup_multipliers as mup_multipliers
from lrjax._finding._sharpness import sharpness as sharpness
from lrjax._finding._stability import StabilityResult as StabilityResult
from lrjax._finding._stability import stability as stability
from lrjax._finding._sweep import SweepResult as SweepResult
from lrjax._finding._sweep import sweep as sweep
from lrjax._finding._tune import TuneResult as TuneResult
from lrjax._finding._tune import TuneRound as TuneRound
from lrjax._finding._tune import tune_learning_rate as tune_learning_rate
from lrjax._hyperparams import HyperparamsState as HyperparamsState
from lrjax._inspect import current_learning_rate as current_learning_rate
from lrjax._inspect import effective_learning_rates as effective_learning_rates
from lrjax._lr_free._average import PolynomialAverage as PolynomialAverage
from lrjax._lr_free._average import PolynomialAverageState as PolynomialAverageState
from lrjax._lr_free._average import polynomial_average as polynomial_average
from lrjax._lr_free._dadapt_adam import DAdaptAdamState as DAdaptAdamState
from lrjax._lr_free._dadapt_adam import dadapt_adam as dadapt_adam
from lrjax._lr_free._dadapt_sgd import DAdaptSGDState as DAdaptSGDState
from lrjax._lr_free._dadapt_sgd import dadapt_sgd as dadapt_sgd
from lrjax._lr_free._dog import DoGState as DoGState
from lrjax._lr_free._dog import LDoGState as LDoGState
from lrjax._lr_free._dog import dog as dog
from lrjax._lr_free._prodigy import ProdigyState as ProdigyState
from lrjax._lr_free._prodigy import prodigy as prodigy
from lrjax._lr_free._schedule_free import ScheduleFreeAdamWState as ScheduleFreeAdamWState
from lrjax._lr_free._schedule_free import ScheduleFreeSGDState as ScheduleFreeSGDState
from lrjax._lr_free._schedule_free_adamw import schedule_free_adamw as schedule_free_adamw
from lrjax._lr_free._schedule_free_eval import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from lrjax._lr_free._schedule_free_sgd import schedule_free_sgd as schedule_free_sgd
from lrjax._methods._adadelta import ScaleByAdadeltaState as ScaleByAdadeltaState
from lrjax._methods._adadelta import adadelta as adadelta
from lrjax._methods._adadelta import scale_by_adadelta as scale_by_adadelta
from lrjax._methods._adagrad import ScaleByAdagradState as ScaleByAdagradState
from lrjax._methods._adagrad import adagrad as adagrad
from lrjax._methods._adagrad import scale_by_adagrad as scale_by_adagrad
from lrjax._methods._adam import ScaleByAdamState as ScaleByAdamState
from lrjax._methods._adam import ScaleByAmsgradState as ScaleByAmsgradState
from lrjax._methods._adam import adam as adam
from lrjax._methods._adam import adamw as adamw
from lrjax._methods._adam import scale_by_adam as scale_by_adam
from lrjax._methods._layerwise import layerwise_decay as layerwise_decay
from lrjax._methods._rmsprop import ScaleByCenteredRmsState as ScaleByCenteredRmsState
from lrjax._methods._rmsprop import ScaleByRmsState as ScaleByRmsState
from lrjax._methods._rmsprop import rmsprop as rmsprop
from lrjax._methods._rmsprop import scale_by_rms as scale_by_rms
from lrjax._methods._sgd import ScaleByMomentumState as ScaleByMomentumState
from lrjax._methods._sgd import scale_by_momentum as scale_by_momentum
from lrjax._methods._sgd import sgd as sgd
from lrjax._set import set_hyperparams as set_hyperparams

__version__ = "0.1.0"
