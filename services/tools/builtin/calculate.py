"""`calculate`: arithmetic over numeric literals, parsed with `ast` and walked node by node.

Only numbers, + - * / // % ** and unary +/- are accepted; names, calls, attributes, subscripts and
every other node are refused, so `__import__('os')` is a syntax error of this language, not code.
Sizes are bounded (expression length, node count, exponent, integer size) so `2**99999999` or
`9**9**9` is refused before it can eat the worker's CPU or memory."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from services.tools.registry import ToolError

MAX_EXPRESSION = 500
MAX_NODES = 200
MAX_EXPONENT = 10_000
MAX_INT_BITS = 4096  # about 1233 decimal digits

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _bits(value: Number) -> float:
    """log2 of the magnitude (how large a result would be), without building it."""
    return math.log2(abs(value)) if value else 0.0


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {exponent} is too large (at most {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and _bits(base) * exponent > MAX_INT_BITS:
        raise ToolError("the result is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


def _checked(value: Any) -> Number:
    if not isinstance(value, int | float):  # an operator on real numbers gives one; complex is caught in _power
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("the result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not finite")
    return value


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        # bool is an int subclass; True + True is not arithmetic a user wrote.
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return _checked(node.value)
        raise ToolError(f"only numbers are allowed, not {type(node.value).__name__}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        if isinstance(node.op, ast.Mult) and _bits(left) + _bits(right) > MAX_INT_BITS + 1:
            raise ToolError("the result is too large")
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("the result is too large") from None
    raise ToolError(f"'{type(node).__name__}' is not allowed: only numbers and + - * / // % ** ( )")


def calculate(expression: str) -> Number:
    """The value of an arithmetic expression; ToolError for anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("expression is required")
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"expression is longer than {MAX_EXPRESSION} characters")
    # `^` is what people type for a power.
    source = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg if isinstance(exc, SyntaxError) else exc}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"expression has more than {MAX_NODES} parts")
    try:
        return _eval(tree)
    except OverflowError:
        raise ToolError("the result is too large") from None
