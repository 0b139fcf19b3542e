"""The package's lazy API (henetlib/__init__.py): every public name resolves to what its module defines, a wing
is imported only when asked for, and an unknown name is an AttributeError."""

import importlib
import subprocess
import sys

import pytest

import henetlib


@pytest.mark.parametrize("name", henetlib.__all__)
def test_every_public_name_resolves(name):
    value = getattr(henetlib, name)
    if name in henetlib._MODULES:
        assert value is importlib.import_module(f"henetlib.{name}")
    else:
        assert value is getattr(importlib.import_module(henetlib._API[name]), name)
    assert name in dir(henetlib)


def test_all_is_the_api_and_the_wings():
    assert henetlib.__all__ == sorted(set(henetlib._API) | set(henetlib._MODULES))
    assert {"create_model", "make_config", "run", "StudyContext", "scoreboard", "clear_caches"} <= set(henetlib.__all__)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'henetlib' has no attribute 'no_such_thing'"):
        henetlib.no_such_thing  # noqa: B018
    assert not hasattr(henetlib, "train_model")
    from_import = "from henetlib import no_such_thing"
    with pytest.raises(ImportError, match="no_such_thing"):
        exec(from_import, {})


def test_importing_the_package_imports_no_wing():
    code = ("import sys, henetlib; print(sorted(m for m in sys.modules if m.startswith('henetlib.'))); "
            "henetlib.paper; print('henetlib.paper' in sys.modules, 'henetlib.method' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"  # a wing is loaded on first use
    assert out[1] == "True False"  # henetlib.paper loads that module alone, not the method wing
