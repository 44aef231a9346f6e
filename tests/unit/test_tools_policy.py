"""Pure tests of the tool policy, the settings decider and the registry's naming."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from schemas.config import Tools
from schemas.errors import DomainError
from schemas.presets import PresetTools
from schemas.tools import SetDangerous, ToolDangerousSet, ToolToggled
from services.tools import domain
from services.tools.domain import SettingsState
from services.tools.policy import ToolSettings, check, permitted
from services.tools.registry import ToolDef, mcp_tool_name

CALC = ToolDef("calculate", "", {}, source="builtin", category="basic")
SHELL = ToolDef("srv__run", "", {}, source="mcp", category="mcp", server_name="srv", dangerous=True)
ADMIN_ONLY = ToolDef("wipe", "", {}, source="plugin", category="admin", permission="admin")


def refused(tool: ToolDef, **kwargs: Any) -> str:
    kwargs.setdefault("settings", ToolSettings())
    kwargs.setdefault("config", Tools())
    with pytest.raises(DomainError) as caught:
        check(tool, kwargs.pop("settings"), kwargs.pop("config"), **kwargs)
    assert caught.value.status == 403
    return caught.value.code


def test_default_allows_a_plain_tool_for_anyone() -> None:
    check(CALC, ToolSettings(), Tools(), scope="group:1")
    assert permitted(CALC, ToolSettings(), Tools(), scope="admin")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"config": Tools(enabled=False)},
        {"config": Tools(builtin_enabled=False)},
        {"config": Tools(disabled_tools=["calculate"])},
        {"settings": ToolSettings(enabled={"calculate": False})},
        {"settings": ToolSettings(categories={"basic": False})},
        {"preset": PresetTools(enable_builtin_tools=False)},
        {"preset": PresetTools(allowed_tools=["roll_dice"])},
        {"preset": PresetTools(disabled_tools=["calculate"])},
        {"group": {"disabled": ["calculate"]}},
        {"group": {"allowed": ["roll_dice"]}},
    ],
)
def test_disabled_anywhere_is_tool_disabled_even_for_an_admin(kwargs: dict[str, Any]) -> None:
    assert refused(CALC, scope="admin", **kwargs) == "TOOL_DISABLED"


def test_preset_mcp_switch_touches_only_mcp_tools() -> None:
    preset = PresetTools(enable_mcp_tools=False)
    check(CALC, ToolSettings(), Tools(), preset=preset)
    assert refused(SHELL, preset=preset) == "TOOL_DISABLED"
    check(CALC, ToolSettings(), Tools(), preset=PresetTools(allowed_tools=["calculate"]))


def test_dangerous_only_for_admins_or_where_allowed() -> None:
    check(SHELL, ToolSettings(), Tools(), scope="admin")
    assert refused(SHELL, scope="group:1") == "FORBIDDEN"
    assert refused(SHELL, scope="none") == "FORBIDDEN"
    # The global switch, unless the group says otherwise; the group's word wins either way.
    check(SHELL, ToolSettings(), Tools(allow_dangerous=True), scope="group:1")
    check(SHELL, ToolSettings(), Tools(), group={"allowDangerous": True}, scope="group:1")
    assert refused(SHELL, config=Tools(allow_dangerous=True), group={"allowDangerous": False}, scope="group:1")
    # The admin's flag overrides the source's default, both ways.
    check(SHELL, ToolSettings(dangerous={"srv__run": False}), Tools(), scope="group:1")
    assert refused(CALC, settings=ToolSettings(dangerous={"calculate": True}), scope="group:1") == "FORBIDDEN"


def test_admin_permission_tools_never_run_for_others() -> None:
    check(ADMIN_ONLY, ToolSettings(), Tools(), scope="admin")
    assert refused(ADMIN_ONLY, config=Tools(allow_dangerous=True), scope="group:1") == "FORBIDDEN"


def test_settings_decider() -> None:
    state = SettingsState()
    assert domain.decide_toggle(state, "calculate", None) == [ToolToggled(name="calculate", enabled=False)]
    state = functools.reduce(domain.evolve, domain.decide_toggle(state, "calculate", False), state)
    assert state.enabled == {"calculate": False} and state.version == 1
    assert domain.decide_toggle(state, "calculate", False) == []
    assert domain.decide_set_all(state, ["calculate", "roll_dice"], True) == [
        ToolToggled(name="calculate", enabled=True)
    ]
    defaults = {"calculate": False, "srv__run": True}
    events = domain.decide_dangerous(state, SetDangerous(tools=["calculate"]), defaults)
    assert events == [
        ToolDangerousSet(name="calculate", dangerous=True),
        ToolDangerousSet(name="srv__run", dangerous=False),
    ]
    assert domain.decide_dangerous(state, SetDangerous(name="srv__run", dangerous=True), defaults) == []


def test_mcp_tool_names_are_sanitised_and_bounded() -> None:
    assert mcp_tool_name("my server", "get.time") == "my_server__get_time"
    assert len(mcp_tool_name("s" * 50, "t" * 50)) == 64
    assert mcp_tool_name("a", "x") != mcp_tool_name("b", "x")
