"""Checks that hassfest and the HACS action would make, run offline with the suite.

They read the repository as those validators do: the manifest, hacs.json, the brand
images, and every translation key, step, error and abort reason the code uses.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib import metadata
import json
from pathlib import Path
import re
import struct
from typing import Any

import pytest
import yaml

from custom_components.isp_watch.const import UNREADABLE_ISSUES
from custom_components.isp_watch.outbox import PAUSING_RESULTS
from custom_components.isp_watch.tweet_sender import ISSUES_BY_RESULT
from homeassistant.const import Platform, __version__ as ha_version
from homeassistant.loader import Manifest

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / "isp_watch"
MANIFEST: Manifest = json.loads((INTEGRATION / "manifest.json").read_text())
TRANSLATIONS: dict[str, Any] = json.loads(
    (INTEGRATION / "translations" / "en.json").read_text()
)
ICONS: dict[str, Any] = json.loads((INTEGRATION / "icons.json").read_text())
PLATFORM_FILES = {
    platform.value: INTEGRATION / f"{platform.value}.py"
    for platform in Platform
    if (INTEGRATION / f"{platform.value}.py").exists()
}
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}


def _calls(path: Path) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node


def _keyword(call: ast.Call, name: str) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return None


def _has_keyword(call: ast.Call, name: str) -> bool:
    return any(keyword.arg == name for keyword in call.keywords)


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _translation(*path: str) -> Any:
    node: Any = TRANSLATIONS
    for part in path:
        assert isinstance(node, dict), f"{'.'.join(path)}: {part} is not a section"
        assert part in node, f"translations/en.json lacks {'.'.join(path)}"
        node = node[part]
    return node


def test_manifest_fields() -> None:
    """The manifest has what hassfest requires of a custom integration."""
    assert MANIFEST["domain"] == INTEGRATION.name == "isp_watch"
    assert MANIFEST["name"] == "ISP Watch"
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert MANIFEST["documentation"].startswith("https://")
    assert MANIFEST["issue_tracker"].startswith("https://")
    assert MANIFEST["codeowners"]
    assert all(owner.startswith("@") for owner in MANIFEST["codeowners"])
    assert MANIFEST["config_flow"] is True
    assert MANIFEST["iot_class"] == "cloud_polling"
    assert MANIFEST["integration_type"] == "service"
    assert "speedtest" in MANIFEST["loggers"]
    assert "tweepy" in MANIFEST["loggers"]


def test_manifest_key_order() -> None:
    """Hassfest wants domain and name first, then the keys in alphabetical order."""
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_requirements_are_pinned_and_installed() -> None:
    """The manifest pins exact versions, the ones the suite runs against."""
    test_pins = {
        name.lower(): version
        for name, version in re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)",
            (ROOT / "requirements_test.txt").read_text(),
            re.MULTILINE,
        )
    }
    for requirement in MANIFEST["requirements"]:
        name, separator, version = requirement.partition("==")
        assert separator, f"{requirement} is not pinned with =="
        assert metadata.version(name) == version, f"{name} installed differs"
        assert test_pins[name.lower()] == version, f"{name} differs in the test pins"


def test_hacs_json() -> None:
    """hacs.json has only keys HACS knows, and the Home Assistant the suite runs."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert set(hacs) <= HACS_KEYS
    assert hacs["name"] == MANIFEST["name"]
    assert hacs["homeassistant"] == ha_version
    for required in ("README.md", "LICENSE", "info.md"):
        assert (ROOT / required).is_file(), required


@pytest.mark.parametrize(
    ("file_name", "size"), [("icon.png", 256), ("icon@2x.png", 512)]
)
def test_brand_images(file_name: str, size: int) -> None:
    """Home Assistant serves brand/ icons of custom integrations at these sizes."""
    data = (INTEGRATION / "brand" / file_name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (size, size)


def _flow_classes() -> Iterator[tuple[str, ast.ClassDef]]:
    """Each flow class of config_flow.py with the translation section it uses."""
    tree = ast.parse((INTEGRATION / "config_flow.py").read_text())
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {ast.unparse(base) for base in node.bases}
        if any("OptionsFlow" in base for base in bases):
            yield "options", node
        elif any("ConfigFlow" in base for base in bases):
            yield "config", node


def _strings_in(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def test_flow_steps_errors_and_aborts_are_translated() -> None:
    """Every form, menu, error and abort the flows can show has English text."""
    found_flow = False
    for section, flow in _flow_classes():
        found_flow = True
        for node in ast.walk(flow):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name in {"async_show_form", "async_show_menu"}:
                    step_id = _keyword(node, "step_id")
                    assert step_id, f"{section}: a form without a literal step_id"
                    step = _translation(section, "step", step_id)
                    assert "title" in step or "description" in step
                    if name == "async_show_menu":
                        for option in _strings_in(node.keywords[-1].value):
                            if option != step_id:
                                assert option in step.get("menu_options", {})
                if name == "async_abort":
                    reason = _keyword(node, "reason")
                    assert reason, f"{section}: an abort without a literal reason"
                    _translation(section, "abort", reason)
                if name == "_abort_if_unique_id_configured":
                    _translation(section, "abort", "already_configured")
            # errors["base"] = "invalid_auth" and {"base": "cannot_connect"}
            if isinstance(node, ast.Assign) and isinstance(
                node.targets[0], ast.Subscript
            ):
                target = ast.unparse(node.targets[0].value)
                if target == "errors" and isinstance(node.value, ast.Constant):
                    _translation(section, "error", str(node.value.value))
            if (
                isinstance(node, ast.Dict)
                and node.keys
                and all(isinstance(key, ast.Constant) for key in node.keys)
                and any(
                    isinstance(key, ast.Constant) and key.value == "base"
                    for key in node.keys
                )
            ):
                for value in node.values:
                    if isinstance(value, ast.Constant):
                        _translation(section, "error", str(value.value))
        methods = {
            item.name for item in flow.body if isinstance(item, ast.AsyncFunctionDef)
        }
        if "async_step_reauth" in methods:
            _translation("config", "abort", "reauth_successful")
        if "async_step_reconfigure" in methods:
            _translation("config", "abort", "reconfigure_successful")
    assert found_flow


def test_form_fields_have_labels_and_descriptions() -> None:
    """Each field of each step has a label and a description for the user."""
    for section in ("config", "options"):
        for step_id, step in TRANSLATIONS.get(section, {}).get("step", {}).items():
            labels = step.get("data", {})
            descriptions = step.get("data_description", {})
            assert set(labels) == set(descriptions), f"{section}.step.{step_id}"


def test_entity_translation_keys() -> None:
    """Every entity translation key in code has a name, and icons match entities."""
    used: dict[str, set[str]] = {}
    for platform, path in PLATFORM_FILES.items():
        for call in _calls(path):
            key = _keyword(call, "translation_key")
            if key and not _has_keyword(call, "translation_domain"):
                used.setdefault(platform, set()).add(key)
    assert used, "no entity descriptions found"
    for platform, keys in used.items():
        for key in keys:
            assert "name" in _translation("entity", platform, key)
    translated = {
        platform: set(entities)
        for platform, entities in TRANSLATIONS.get("entity", {}).items()
    }
    assert translated == used, "translations name entities the code does not have"
    for platform, entities in ICONS.get("entity", {}).items():
        for key, icon in entities.items():
            assert key in used.get(platform, set()), f"icon for unknown {key}"
            for value in [icon.get("default"), *icon.get("state", {}).values()]:
                assert value is None or value.startswith("mdi:")


def test_a_paused_queue_names_its_reason_in_words() -> None:
    """Every reason that pauses the post queue has a text, not a raw value."""
    reasons = _translation("entity", "sensor", "outbox")["state_attributes"]
    assert set(reasons["paused_reason"]["state"]) == {
        result.value for result in PAUSING_RESULTS
    }


def test_exceptions_and_issues_are_translated() -> None:
    """Errors raised to users and repair issues have English text."""
    issues = {*ISSUES_BY_RESULT.values(), *UNREADABLE_ISSUES.values()}
    for path in INTEGRATION.glob("*.py"):
        for call in _calls(path):
            key = _keyword(call, "translation_key")
            if key is not None and _has_keyword(call, "translation_domain"):
                assert "message" in _translation("exceptions", key)
            if (
                _call_name(call) == "async_set_issue"
                and len(call.args) > 2
                and isinstance(call.args[2], ast.Constant)
            ):
                issues.add(str(call.args[2].value))
    assert issues
    assert issues == set(TRANSLATIONS["issues"]), "issues in code and text differ"
    for key in issues:
        issue = _translation("issues", key)
        assert "title" in issue
        assert "description" in issue


# The languages ISP Watch ships besides English.
LANGUAGES = ("de", "es", "fr", "nl")
# English texts that are the same word in some of those languages, so an unchanged
# copy is not a sign of a text left untranslated.
SAME_IN_OTHER_LANGUAGES = frozenset(
    {"Download", "Internet", "Jitter", "No", "Ping", "Upload"}
)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _texts(node: dict[str, Any], path: str = "") -> dict[str, str]:
    """Every text of a translation file, by its dotted key."""
    texts: dict[str, str] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            texts |= _texts(value, f"{path}{key}.")
        else:
            texts[f"{path}{key}"] = value
    return texts


def _language(language: str) -> dict[str, str]:
    path = INTEGRATION / "translations" / f"{language}.json"
    return _texts(json.loads(path.read_text(encoding="utf-8")))


def test_every_shipped_language_has_a_file() -> None:
    """Exactly English and the shipped languages have translation files."""
    files = {path.stem for path in (INTEGRATION / "translations").glob("*.json")}
    assert files == {"en", *LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_has_every_english_key(language: str) -> None:
    """A language translates every text of en.json, and nothing en.json lacks."""
    english = _texts(TRANSLATIONS)
    translated = _language(language)
    assert sorted(set(english) - set(translated)) == [], "untranslated keys"
    assert sorted(set(translated) - set(english)) == [], "keys en.json lacks"


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_keeps_the_placeholders(language: str) -> None:
    """Each text has the same {placeholders} as its English text, each as often."""
    english = _texts(TRANSLATIONS)
    differing = {
        key: text
        for key, text in _language(language).items()
        if key in english
        and sorted(PLACEHOLDER.findall(text))
        != sorted(PLACEHOLDER.findall(english[key]))
    }
    assert differing == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_texts_are_translated(language: str) -> None:
    """No text is empty, and none is a copy of the English one left behind."""
    english = _texts(TRANSLATIONS)
    translated = _language(language)
    assert [key for key, text in translated.items() if not text.strip()] == []
    copies = [
        key
        for key, text in translated.items()
        if text == english.get(key) and text not in SAME_IN_OTHER_LANGUAGES
    ]
    assert copies == []


def test_services_are_consistent() -> None:
    """services.yaml, its translations and its icons name the same services."""
    services_file = INTEGRATION / "services.yaml"
    services = (
        yaml.safe_load(services_file.read_text()) or {}
        if services_file.exists()
        else {}
    )
    assert set(services) == set(TRANSLATIONS.get("services", {}))
    assert set(services) == set(ICONS.get("services", {}))
    for service, definition in services.items():
        fields = set((definition or {}).get("fields", {}))
        assert fields == set(TRANSLATIONS["services"][service].get("fields", {}))


# Imports only go down. A module may import from its own floor and the floors below it.
FLOORS: tuple[frozenset[str], ...] = (
    # The ground floor: names, defaults, ranges, shared types. No I/O.
    frozenset({"const", "models"}),
    # Pure logic: plain Python, no Home Assistant.
    frozenset(
        {
            "compliance",
            "connectivity",
            "evaluation",
            "outbox",
            "speedtest_client",
            "speedtest_runner",
            "traffic",
            "tweet_length",
            "x_client",
        }
    ),
    # What runs an entry: its settings, its coordinators, repair issues.
    frozenset({"coordinator", "data", "repairs", "tweet_sender"}),
    # What Home Assistant sees: entities, flows, diagnostics, actions.
    frozenset(
        {
            "binary_sensor",
            "button",
            "config_flow",
            "diagnostics",
            "entity",
            "notify",
            "sensor",
            "services",
        }
    ),
    # Setup and unload only.
    frozenset({"__init__"}),
)
# Clients that start processes or talk to the network: only what runs an entry, or
# what Home Assistant sees, may use them; the shared types live in models.
IO_CLIENTS = frozenset(
    {"connectivity", "speedtest_client", "speedtest_runner", "x_client"}
)
GROUND_FLOOR_IMPORTS = frozenset(
    {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "enum",
        "functools",
        "math",
        "types",
        "typing",
    }
)


def _floor(module: str) -> int:
    return next(index for index, names in enumerate(FLOORS) if module in names)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import of the file, TYPE_CHECKING ones included.

    Modules of the integration are named without the package ("coordinator"); the
    package itself is "__init__".
    """
    package = "custom_components.isp_watch"

    def local(name: str) -> str:
        if name != package and not name.startswith(f"{package}."):
            return name
        return name.removeprefix(package).lstrip(".").split(".")[0] or "__init__"

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, local(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, local(node.module or "")
            elif node.module is not None:
                yield node.lineno, node.module.split(".")[0]
            else:
                # "from . import name": a module of the package, or the package's name.
                for alias in node.names:
                    is_module = (INTEGRATION / f"{alias.name}.py").exists()
                    yield node.lineno, alias.name if is_module else "__init__"


def _modules() -> list[Path]:
    return sorted(INTEGRATION.glob("*.py"))


def test_every_module_has_a_floor() -> None:
    """A new module is placed on a floor before it can import anything."""
    placed = set().union(*FLOORS)
    assert [path.stem for path in _modules() if path.stem not in placed] == []


def test_imports_only_go_down() -> None:
    """Nothing imports a module above its own floor."""
    modules = {path.stem for path in _modules()}
    upward = [
        f"{path.name}:{line} imports {module}"
        for path in _modules()
        for line, module in _imports(path)
        if module in modules and _floor(module) > _floor(path.stem)
    ]
    assert upward == []


def test_pure_modules_do_without_home_assistant() -> None:
    """The ground floor and the pure logic can be read and tested on their own."""
    leaks = [
        f"{path.name}:{line} imports {module}"
        for path in _modules()
        if _floor(path.stem) <= 1
        for line, module in _imports(path)
        if module.split(".")[0] == "homeassistant"
    ]
    assert leaks == []


def test_pure_logic_needs_no_io_client() -> None:
    """The evaluation, the outbox and the rest of the pure logic use models' types."""
    clients = [
        f"{path.name}:{line} imports {module}"
        for path in _modules()
        if _floor(path.stem) <= 1
        for line, module in _imports(path)
        if module in IO_CLIENTS
    ]
    assert clients == []


def test_the_ground_floor_does_no_io() -> None:
    """The constants and models import only plain data modules of the library."""
    modules = {path.stem for path in _modules()}
    outside = [
        f"{path.name}:{line} imports {module}"
        for path in _modules()
        if _floor(path.stem) == 0
        for line, module in _imports(path)
        if module not in modules and module not in GROUND_FLOOR_IMPORTS
    ]
    assert outside == []


def test_the_import_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check reads relative, package and absolute imports alike."""
    module = tmp_path / "evaluation.py"
    module.write_text(
        "from . import IspWatchConfigEntry\n"
        "from .coordinator import LineSnapshot\n"
        "from custom_components.isp_watch.data import IspWatchSettings\n"
        "import custom_components.isp_watch.sensor\n"
    )

    found = [name for _line, name in _imports(module)]

    assert found == [
        "__init__",
        "coordinator",
        "data",
        "sensor",
    ]
