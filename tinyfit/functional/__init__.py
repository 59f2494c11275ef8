"""All differentiable ops. Forward and backward of each op sit side by side:

* basic.py       elementwise arithmetic, reductions, reshape/transpose/getitem, linear
* conv.py        conv2d (NHWC): the op, its plan (which algorithm a layer's shapes get), im2col
* conv_rows.py   conv2d's kernel-rows algorithm for padded stride-1 layers
* pool.py        max pooling (separable where windows are whole strides), maxout
* window.py      window geometry: output sizes, in-bounds ranges, padding
* activation.py  relu, dropout, softmax / log-softmax with temperature
* loss.py        cross-entropy, soft cross-entropy, hint loss, KD loss
"""
from .basic import (add, sub, mul, div, neg, pow, exp, log, sqrt, matmul, reshape, transpose,
                    sum, mean, max, broadcast_to, getitem, concatenate, linear, flatten, sum_to)
from .conv import ConvPlan, conv2d, conv_plan, im2col
from .window import conv_output_size, pool_output_size
from .pool import max_pool2d, maxout
from .activation import relu, dropout, softmax, log_softmax, soften, check_temperature, check_dropout
from .loss import (KDTerm, cross_entropy, soft_cross_entropy, hint_loss, kd_loss, kd_loss_targets,
                   check_kd_weight)
