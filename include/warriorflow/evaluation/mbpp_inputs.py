"""Restore the Python types of MBPP+ inputs that JSON cannot hold (tuples, sets, complex numbers).

The EvalPlus MBPP+ release stores every input as JSON, so tuples arrive as lists. EvalPlus restores
them per task (``evalplus.data.mbpp.mbpp_deserialize_inputs``); this module does the same for the
same tasks, so that e.g. ``similar_elements`` receives tuples, as its contract requires.

This file runs *inside the sandbox*: its source is embedded in the checking program, so it must use
the standard library only and define nothing but :func:`deserialize_inputs` and its helpers.
"""


def _tuples(xs):
    return [tuple(x) for x in xs]


def _deep_tuple(x):
    return tuple(_deep_tuple(i) for i in x) if isinstance(x, list) else x


def _each_arg_tuple(inp):  # every argument a tuple
    return _tuples(inp)


def _each_arg_tuples(inp):  # every argument a list of tuples
    return [_tuples(arg) for arg in inp]


def _first_arg_tuples(inp):  # first argument a list of tuples, the rest unchanged
    return [_tuples(inp[0])] + list(inp[1:])


def _second_arg_tuple(inp):
    return [inp[0], tuple(inp[1])]


def _first_arg_tuple(inp):
    return [tuple(inp[0])] + list(inp[1:])


def _tuple_of_tuples(inp):  # every argument a tuple of tuples
    return [tuple(_tuples(arg)) for arg in inp]


def _sets(inp):
    return [[set(item) if isinstance(item, list) and item else {} for item in inp[0]]]


def _float_complex(inp):
    return (float(inp[0]), complex(inp[1]))


def _mixed_tuple(inp):
    return [tuple(tuple(i) if isinstance(i, list) else i for i in inp[0])]


def _dict_of_tuples(inp):
    return [{k: tuple(v) for k, v in inp[0].items()}] + list(inp[1:])


def _complex(inp):
    return [complex(inp[0])]


_RULES = {}
for _ids, _rule in (
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
     _each_arg_tuple),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780), _each_arg_tuples),
    ((75, 413, 444, 753), _first_arg_tuples),
    ((106, 750), _second_arg_tuple),
    ((115,), _sets),
    ((124,), _float_complex),
    ((250, 405, 446, 617, 720, 763, 808, 307), _first_arg_tuple),
    ((259, 401, 445), _tuple_of_tuples),
    ((278,), _mixed_tuple),
    ((722,), _dict_of_tuples),
    ((252,), _complex),
    ((580, 615, 791), _deep_tuple),
):
    for _i in _ids:
        _RULES[_i] = _rule


def deserialize_inputs(task_id, inputs):
    """The inputs of MBPP+ task ``task_id`` (e.g. "Mbpp/2") with their Python types restored."""
    try:
        number = int(str(task_id).rsplit("/", 1)[-1])
    except ValueError:
        return inputs
    rule = _RULES.get(number)
    return inputs if rule is None else [rule(inp) for inp in inputs]
