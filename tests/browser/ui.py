"""Small steps through Home Assistant's frontend, finding things as a user sees them.

Home Assistant's forms are web components: a field's visible label is the ``label``
property of its ``ha-selector`` (or ``ha-form-*``) element, not an HTML ``<label>``, so
``get_by_label`` cannot find it. The ``field`` selector engine registered here finds a
field by that label, through every shadow root, the way a user finds it by reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
import json
from pathlib import Path
import re
from typing import Any

import hass_frontend
from playwright.sync_api import Error, Locator, Page, Playwright, expect
import yaml

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "custom_components" / "isp_watch" / "translations"
# Home Assistant's frontend ships its own texts as <language>-<hash>.json; those of the
# settings panel lie apart, in config/.
FRONTEND_TRANSLATIONS = Path(hass_frontend.where()) / "static" / "translations"

# Finds form fields (ha-selector, ha-form-*) whose visible label is the selector's text
# (a JSON string).
# Required fields show the label with a trailing "*", which is not part of the label.
FIELD_ENGINE = """
{
  _all(root) {
    const found = [];
    const walk = (node) => {
      for (const element of node.querySelectorAll('*')) {
        found.push(element);
        if (element.shadowRoot) walk(element.shadowRoot);
      }
    };
    walk(root);
    if (root.shadowRoot) walk(root.shadowRoot);
    return found;
  },
  _matches(element, label) {
    const name = element.localName;
    if (name !== 'ha-selector' && !name.startsWith('ha-form-')) return false;
    if (name === 'ha-form-grid' || name === 'ha-form-expandable') return false;
    return typeof element.label === 'string' && element.label.trim() === label;
  },
  query(root, selector) {
    const label = JSON.parse(selector);
    return this._all(root).find((element) => this._matches(element, label)) ?? null;
  },
  queryAll(root, selector) {
    const label = JSON.parse(selector);
    return this._all(root).filter((element) => this._matches(element, label));
  }
}
"""

# Texts that only appear when a translation is missing: Home Assistant's own
# placeholders, or our translation keys.
RAW_TEXT = re.compile(r"component\.isp_watch\.|\[%key:|isp_watch\.(config|options)\.")


def visit(page: Page, address: str) -> None:
    """Open an address in the tab.

    A dialog that just closed may still be taking its entry out of the tab's history,
    and that aborts a navigation begun at the same moment: then it is begun again.
    """
    for attempt in range(3):
        try:
            page.goto(address)
        except Error as error:
            if "ERR_ABORTED" not in error.message or attempt == 2:
                raise
        else:
            return


def register_selectors(playwright: Playwright) -> None:
    """Make the ``field=<label>`` selector available to every page."""
    playwright.selectors.register("field", FIELD_ENGINE)


def translations(language: str = "en") -> dict[str, Any]:
    """ISP Watch's texts in a language, read at test time: forms may have changed."""
    path = TRANSLATIONS / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _dotted(node: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    texts: dict[str, str] = {}
    for key, value in node.items():
        if isinstance(value, Mapping):
            texts |= _dotted(value, f"{prefix}{key}.")
        else:
            texts[f"{prefix}{key}"] = str(value)
    return texts


@cache
def frontend_texts(language: str) -> dict[str, str]:
    """Home Assistant's own texts in a language, by dotted key ("ui.common.submit")."""
    texts: dict[str, str] = {}
    for folder in (FRONTEND_TRANSLATIONS, FRONTEND_TRANSLATIONS / "config"):
        (path,) = (
            path
            for path in folder.glob(f"{language}-*.json")
            if re.fullmatch(rf"{re.escape(language)}-[0-9a-f]+\.json", path.name)
        )
        texts |= _dotted(json.loads(path.read_text(encoding="utf-8")))
    return texts


def field_labels(step: Mapping[str, Any]) -> dict[str, str]:
    """Every field's label of a step, by field key, sections included."""
    labels = dict(step.get("data", {}))
    for section in step.get("sections", {}).values():
        labels |= section.get("data", {})
    return labels


def error_text(flow: str, key: str, **placeholders: str) -> str:
    """The translated error message for an error key, its placeholders filled in."""
    return str(translations()[flow]["error"][key]).format(**placeholders)


# --- The user's language --------------------------------------------------------------


def choose_language(page: Page, language: str, name: str) -> None:
    """Profile → Localization → Language: the language the user sees Home Assistant in.

    ``name`` is the language as the picker lists it, in that language ("Deutsch").
    """
    visit(page, "/profile/localization")
    page.locator("ha-language-picker ha-picker-field").click()
    page.locator("ha-combo-box-item").filter(has_text=name).first.click()
    settings = frontend_texts(language)["panel.config"]
    expect(page.locator("ha-sidebar").get_by_text(settings, exact=True)).to_be_visible()


# --- Onboarding -----------------------------------------------------------------------


def onboard(page: Page, *, name: str, username: str, password: str) -> None:
    """Walk the onboarding of a fresh Home Assistant as a new user does."""
    visit(page, "/")
    page.get_by_role("button", name="Create my smart home").click()
    fill(page, "Name", name)
    fill(page, "Username", username)
    fill(page, "Password", password)
    fill(page, "Confirm password", password)
    page.get_by_role("button", name="Create account").click()
    # Location, country, analytics: the suggested answers do, however many steps.
    next_step = page.get_by_role("button", name="Next")
    finish = page.get_by_role("button", name="Finish")
    while True:
        expect(next_step.or_(finish)).to_be_visible()
        if finish.is_visible():
            break
        button = next_step.element_handle()
        button.click()
        button.wait_for_element_state("hidden")
    finish.click()
    page.wait_for_url(re.compile(r"/home/|/lovelace/"))


def log_in(page: Page, username: str, password: str) -> None:
    """The login page of an onboarded Home Assistant."""
    visit(page, "/")
    # The login page's fields are not Home Assistant's form fields (ha-auth-form-*),
    # but plain inputs named after what they hold.
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("ha-sidebar")).to_be_visible()


# --- Forms ----------------------------------------------------------------------------


def field(scope: Page | Locator, label: str) -> Locator:
    """The form field a user finds by its label."""
    # The label goes as a JSON string: labels may hold quotes or ">>".
    return scope.locator(f"field={json.dumps(label)}")


def fill(scope: Page | Locator, label: str, value: str) -> None:
    """Type into the text or number box with this label."""
    box = field(scope, label).locator("input").first
    box.fill(value)


def open_sections(scope: Locator) -> None:
    """Expand every collapsed section of a form, so all its fields can be seen."""
    for header in scope.locator("ha-expansion-panel:not([expanded]) .summary").all():
        header.click()


def visible_labels(scope: Locator) -> list[str]:
    """The labels of every field shown in a form."""
    return scope.evaluate(
        """(root) => {
          const labels = [];
          const walk = (node) => {
            for (const element of node.querySelectorAll('*')) {
              const name = element.localName;
              if ((name === 'ha-selector' || (name.startsWith('ha-form-')
                    && name !== 'ha-form-grid' && name !== 'ha-form-expandable'))
                  && typeof element.label === 'string') {
                labels.push(element.label.trim());
              }
              if (element.shadowRoot) walk(element.shadowRoot);
            }
          };
          walk(root.shadowRoot ?? root);
          return labels;
        }"""
    )


def shown_text(scope: Locator) -> str:
    """The text a user sees in a part of the page, through every shadow root."""
    return scope.evaluate(
        """(root) => {
          const parts = [];
          const walk = (node) => {
            for (const child of node.childNodes) {
              if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent);
              if (child.nodeType === Node.ELEMENT_NODE) {
                if (child.shadowRoot) walk(child.shadowRoot);
                walk(child);
              }
            }
          };
          walk(root.shadowRoot ?? root);
          return parts.join(' ');
        }"""
    )


def raw_options(scope: Locator) -> list[str]:
    """Options of the dropdowns in a form that show their raw value as their text.

    A selector option given by a key ("best") shows its translation from the
    integration's ``selector`` texts; without one, the frontend shows the key itself.
    Dropdown items are in the page before the dropdown opens.
    """
    raw: list[str] = scope.evaluate(
        """(root) => {
          const raw = [];
          const walk = (node) => {
            for (const element of node.querySelectorAll('*')) {
              const value = element.value;
              if (element.localName === 'ha-dropdown-item'
                  && typeof value === 'string' && /^[a-z][a-z0-9_]*$/.test(value)
                  && element.textContent.trim() === value) {
                raw.push(value);
              }
              if (element.shadowRoot) walk(element.shadowRoot);
            }
          };
          walk(root.shadowRoot ?? root);
          return raw;
        }"""
    )
    return raw


def assert_translated(scope: Locator, expected_labels: Iterable[str]) -> None:
    """Every field and option shows its translation, and no raw key shows anywhere."""
    labels = visible_labels(scope)
    assert sorted(labels) == sorted(expected_labels)
    text = shown_text(scope)
    assert not RAW_TEXT.search(text), text
    raw = raw_options(scope)
    assert not raw, f"options shown by their raw value, not translated: {raw}"


# --- Config flows and options ---------------------------------------------------------


def flow_dialog(page: Page) -> Locator:
    """The dialog of a config flow or options flow."""
    return page.locator("dialog-data-entry-flow")


def integration_name() -> str:
    """The integration's name as the manifest gives it, which the UI lists."""
    manifest = json.loads((TRANSLATIONS.parent / "manifest.json").read_text())
    return str(manifest["name"])


def start_adding_integration(page: Page, language: str = "en") -> Locator:
    """Settings → Devices & services → Add integration → ISP Watch: the dialog."""
    texts = frontend_texts(language)
    visit(page, "/home/overview")
    page.locator("ha-sidebar").get_by_text(texts["panel.config"], exact=True).click()
    page.get_by_text(
        texts["ui.panel.config.dashboard.devices.main"], exact=True
    ).first.click()
    page.get_by_role(
        "button", name=texts["ui.panel.config.integrations.add_integration"]
    ).click()
    page.get_by_placeholder(texts["ui.panel.config.integrations.search_brand"]).fill(
        integration_name()
    )
    page.get_by_text(integration_name(), exact=True).click()
    return flow_dialog(page)


def show_step(dialog: Locator, step: Mapping[str, Any]) -> None:
    """Wait for a form step by its translated title; check it is fully translated."""
    expect(dialog.get_by_text(step["title"], exact=True)).to_be_visible(timeout=60_000)
    first_label = next(iter(field_labels(step).values()))
    field(dialog, first_label).wait_for()
    open_sections(dialog)
    assert_translated(dialog, field_labels(step).values())


def fill_step(
    dialog: Locator, step: Mapping[str, Any], values: Mapping[str, str]
) -> None:
    """Fill a step's fields, given by key, through their translated labels."""
    labels = field_labels(step)
    for key, value in values.items():
        fill(dialog, labels[key], value)


def submit(dialog: Locator, language: str = "en") -> None:
    """Press Submit; a button that cannot be pressed fails here."""
    text = frontend_texts(language)["ui.panel.config.integrations.config_flow.submit"]
    button = dialog.get_by_role("button", name=text, exact=True)
    expect(button).to_be_enabled()
    button.click()


def choose(dialog: Locator, menu: Mapping[str, Any], option: str) -> None:
    """Pick a menu step's option by its translated text."""
    expect(dialog.get_by_text(menu["title"], exact=True)).to_be_visible()
    assert not RAW_TEXT.search(shown_text(dialog))
    dialog.get_by_text(menu["menu_options"][option], exact=True).click()


def open_options(page: Page) -> Locator:
    """The integration's page → Configure: the options dialog."""
    visit(page, "/config/integrations/integration/isp_watch")
    page.get_by_role("button", name="Configure").first.click()
    return flow_dialog(page)


def options_form_step(*, containing: str) -> tuple[str | None, str]:
    """Which menu option (None: no menu) leads to the options form holding a field."""
    steps = translations()["options"]["step"]
    form = next(key for key, step in steps.items() if containing in field_labels(step))
    menu = steps.get("init", {}).get("menu_options", {})
    return (form if form in menu else None), form


# --- Devices and entities -------------------------------------------------------------


def entity_names() -> dict[str, str]:
    """Every entity name, by translation key."""
    return {
        key: entity["name"]
        for platform in translations()["entity"].values()
        for key, entity in platform.items()
    }


def open_device(page: Page, name: str) -> Locator:
    """Settings → Devices → the device; its entities' cards."""
    visit(page, "/config/devices/dashboard")
    page.get_by_text(name, exact=True).first.click()
    cards = page.locator("ha-device-entities-card")
    expect(cards.first).to_be_visible()
    return cards


def entity_row(cards: Locator, name: str) -> Locator:
    """The row of an entity on the device page."""
    return cards.locator("hui-generic-entity-row").filter(
        has=cards.page.get_by_text(name, exact=True)
    )


def press(cards: Locator, name: str) -> None:
    """Press a button entity's Press on the device page."""
    entity_row(cards, name).get_by_role("button", name="Press").click()


def open_details(page: Page, cards: Locator, name: str) -> Locator:
    """An entity's more-info dialog → ⋮ → Details: state and attributes."""
    entity_row(cards, name).get_by_text(name, exact=True).click()
    dialog = page.locator("ha-more-info-dialog")
    dialog.get_by_role("button", name="Menu").click()
    dialog.get_by_text("Details", exact=True).click()
    expect(dialog.get_by_text("Attributes", exact=True)).to_be_visible()
    return dialog


# --- Blueprints -----------------------------------------------------------------------


class _BlueprintLoader(yaml.SafeLoader):
    """Reads a blueprint; its !input tags stay unresolved."""


_BlueprintLoader.add_constructor("!input", lambda loader, node: None)


def blueprints() -> dict[str, dict[str, Any]]:
    """The shipped blueprints' metadata, by file name."""
    folder = ROOT / "blueprints" / "automation" / "isp_watch"
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        # A SafeLoader that only learnt to skip !input: nothing else is constructed.
        text = path.read_text(encoding="utf-8")
        found[path.name] = yaml.load(text, _BlueprintLoader)["blueprint"]  # noqa: S506
    return found
