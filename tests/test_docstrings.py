"""Every estimator's docstring states the defaults its code uses, and documents every parameter."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from tests.fast_params import estimator_classes

CLASSES = estimator_classes()

_PARAM_LINE = re.compile(r"^    (\w+) : (.*)$")


def _documented(cls) -> dict[str, str | None]:
    """Parameter name -> the text after ``default=`` (None when no default is stated)."""
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Parameters\n----------\n", 1)
    assert len(section) == 2, f"{cls.__name__} has no Parameters section"
    body = re.split(r"\n(?:Attributes|Notes|Examples|See Also|References)\n-{3,}\n", section[1])[0]
    out = {}
    for line in body.splitlines():
        m = _PARAM_LINE.match("    " + line) if not line.startswith(" ") else None
        if m:
            for name in m.group(1).split(","):
                text = m.group(2)
                d = re.search(r"default=(.+)$", text)
                out[name.strip()] = d.group(1).strip() if d else None
    return out


def _same(stated: str, actual) -> bool:
    try:
        return ast.literal_eval(stated) == actual
    except (ValueError, SyntaxError):
        pass
    if inspect.isclass(actual) or callable(actual):
        qual = f"{actual.__module__}.{actual.__qualname__}"
        short = qual.replace("torch.optim.adam", "torch.optim")
        return stated.replace("np.", "numpy.", 1) in (actual.__qualname__, qual, short)
    return stated == repr(actual)


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_docstring_defaults_match_the_code(cls):
    documented = _documented(cls)
    params = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind is not p.VAR_KEYWORD
    }
    missing = sorted(set(params) - set(documented))
    assert not missing, f"{cls.__name__}: parameters without documentation: {missing}"
    wrong = {
        name: (documented[name], p.default)
        for name, p in params.items()
        if documented[name] is not None and not _same(documented[name], p.default)
    }
    assert not wrong, f"{cls.__name__}: docstring default != code default: {wrong}"
    unstated = sorted(name for name in params if documented[name] is None)
    assert not unstated, f"{cls.__name__}: no default= stated for {unstated}"
