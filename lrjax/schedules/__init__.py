"""Learning-rate schedules: pure functions of the step count."""

from lrjax.schedules._catalog import describe as describe
from lrjax.schedules._compose import join as join
from lrjax.schedules._compose import per_epoch as per_epoch
from lrjax.schedules._compose import product as product
from lrjax.schedules._compose import warmup as warmup
from lrjax.schedules._cosine import cosine_decay as cosine_decay
from lrjax.schedules._cosine import cosine_restarts as cosine_restarts
from lrjax.schedules._cyclic import cyclic as cyclic
from lrjax.schedules._cyclic import one_cycle as one_cycle
from lrjax.schedules._decay import exponential_decay as exponential_decay
from lrjax.schedules._decay import inverse_time_decay as inverse_time_decay
from lrjax.schedules._decay import linear as linear
from lrjax.schedules._decay import polynomial_decay as polynomial_decay
from lrjax.schedules._momentum import cyclic_momentum as cyclic_momentum
from lrjax.schedules._momentum import one_cycle_momentum as one_cycle_momentum
from lrjax.schedules._piecewise import constant as constant
from lrjax.schedules._piecewise import multistep_decay as multistep_decay
from lrjax.schedules._piecewise import piecewise_constant as piecewise_constant
from lrjax.schedules._piecewise import step_decay as step_decay
from lrjax.schedules._schedule import Schedule as Schedule
from lrjax.schedules._transformer import inverse_sqrt as inverse_sqrt
from lrjax.schedules._transformer import wsd as wsd
