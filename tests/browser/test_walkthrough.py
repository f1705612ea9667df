"""A new user's first hour with ISP Watch: a real browser, a real Home Assistant.

The tests run in file order and share one Home Assistant and one browser tab: each
step starts where the previous one left the user. Fields are found by the labels
translations/en.json gives them, so the tests follow the forms as they change.
"""

from __future__ import annotations

from pathlib import Path
import re

from playwright.sync_api import Page, expect

from fakes.x_api import TEST_CREDENTIALS
from tests.browser import ui
from tests.browser.conftest import HomeAssistantServer

ISP_NAME = "Example ISP"
PLAN = {"contract_maximum_download": "100", "contract_maximum_upload": "40"}
LIMITS = {"min_download": "30", "min_upload": "10", "max_ping": "100"}
# The fake line measures about 40 Mbit/s down: a minimum of 50 makes it slow.
SLOW_MINIMUM = "50"
ABOVE_PLAN = "150"
# Loggers of integrations that the onboarding adds and that need the internet
# (weather, text-to-speech, radio): offline they fail, whatever the project does.
NEEDS_THE_INTERNET = re.compile(r"\b(met|google_translate|radio_browser)\b")
# aiohttp's websocket writer raises in a task of its own when a tab closes its
# connection while Home Assistant sends it a compressed message, as a walk that moves
# from page to page does: nothing of any integration, and nothing a user sees.
TAB_CLOSED_WHILE_SENDING = re.compile(
    r"aiohttp/_websocket/writer\.py.*\n.*Cannot write to closing transport\Z", re.DOTALL
)


def _screenshot(page: Page, folder: Path | None, name: str) -> None:
    """Save what the user sees now, when the pictures are being made."""
    if folder is not None:
        page.screenshot(path=folder / f"{name}.png")


def test_home_assistant_starts_without_errors(
    home_assistant: HomeAssistantServer,
) -> None:
    """Every integration of the development configuration sets up cleanly."""
    assert home_assistant.log_errors() == []


def test_onboarding_leads_to_a_working_frontend(page: Page) -> None:
    """After onboarding the frontend shows the overview instead of "Loading…"."""
    ui.onboard(page, name="Tester", username="tester", password="correct-horse-42")

    expect(
        page.locator("ha-sidebar").get_by_text("Settings", exact=True)
    ).to_be_visible()
    expect(page.get_by_text("Welcome Tester")).to_be_visible()


def test_config_flow_with_x_account(
    page: Page, home_assistant: HomeAssistantServer, screenshots: Path | None
) -> None:
    """Every step of the setup, filled by its labels, with keys X accepts."""
    config = ui.translations()["config"]["step"]
    dialog = ui.start_adding_integration(page)

    ui.show_step(dialog, config["user"])
    ui.fill_step(
        dialog, config["user"], {"isp_name": ISP_NAME, "isp_handle": "ExampleISPHelp"}
    )
    ui.fill_step(dialog, config["user"], PLAN | LIMITS)
    # The picture shows the form from its top, where the provider is named.
    ui.field(
        dialog, ui.field_labels(config["user"])["isp_name"]
    ).scroll_into_view_if_needed()
    _screenshot(page, screenshots, "setup_form")
    ui.submit(dialog)

    ui.choose(dialog, config["x_account_choice"], "x_account")
    ui.show_step(dialog, config["x_account"])
    ui.fill_step(
        dialog,
        config["x_account"],
        {
            "api_key": TEST_CREDENTIALS.api_key,
            "api_secret": TEST_CREDENTIALS.api_secret,
            "access_token": TEST_CREDENTIALS.access_token,
            "access_token_secret": TEST_CREDENTIALS.access_token_secret,
        },
    )
    _screenshot(page, screenshots, "x_account_step")
    ui.submit(dialog)

    # The device is created, named after the provider.
    expect(
        dialog.get_by_role("button", name=re.compile("finish", re.IGNORECASE))
    ).to_be_visible()
    expect(dialog.locator("input").first).to_have_value(ISP_NAME)
    dialog.get_by_role("button", name=re.compile("finish", re.IGNORECASE)).click()
    expect(dialog).to_be_hidden()
    checks = [r for r in home_assistant.x_api.requests if r.path == "/2/users/me"]
    assert checks
    assert all(check.signature_valid for check in checks)


def test_device_page_after_run_speed_test(page: Page, screenshots: Path | None) -> None:
    """Run speed test fills the device's sensors with the fake line's numbers."""
    names = ui.entity_names()
    result_states = ui.translations()["entity"]["sensor"]["last_test_result"]["state"]
    cards = ui.open_device(page, ISP_NAME)

    ui.press(cards, names["run_test"])

    expect(ui.entity_row(cards, names["last_test_result"])).to_contain_text(
        result_states["success"], timeout=90_000
    )
    expect(ui.entity_row(cards, names["download"])).to_contain_text(
        re.compile(r"\d+(\.\d+)? Mbit/s")
    )
    expect(ui.entity_row(cards, names["ping"])).to_contain_text(re.compile(r"\d+ ms"))
    expect(ui.entity_row(cards, names["internet"])).to_contain_text("Connected")
    shown = ui.shown_text(page.locator("home-assistant"))
    # The tests' share of WAN traffic exists only with a router's byte counters.
    for key, name in names.items():
        if key != "test_share_of_wan":
            assert name in shown, name
    assert not ui.RAW_TEXT.search(shown)
    _screenshot(page, screenshots, "device_page")


def test_options_refuse_a_minimum_above_the_plan(page: Page) -> None:
    """The form says what is wrong, on the field, and keeps the dialog open."""
    menu_option, form = ui.options_form_step(containing="min_download")
    options = ui.translations()["options"]["step"]
    dialog = ui.open_options(page)
    if menu_option:
        ui.choose(dialog, options["init"], menu_option)
    ui.show_step(dialog, options[form])

    ui.fill_step(dialog, options[form], {"min_download": ABOVE_PLAN})
    ui.submit(dialog)

    expect(
        dialog.get_by_text(
            ui.error_text(
                "options",
                "download_above_plan",
                contract_maximum_download=PLAN["contract_maximum_download"],
            )
        )
    ).to_be_visible()
    expect(
        ui.field(dialog, ui.field_labels(options[form])["min_download"])
    ).to_be_visible()


def test_options_change_a_threshold(page: Page, screenshots: Path | None) -> None:
    """A corrected minimum, and one test judged at a time, are saved."""
    options = ui.translations()["options"]["step"]
    _, form = ui.options_form_step(containing="min_download")
    dialog = ui.flow_dialog(page)
    ui.fill_step(
        dialog, options[form], {"min_download": SLOW_MINIMUM, "evaluation_window": "1"}
    )
    _screenshot(page, screenshots, "options")
    ui.submit(dialog)

    finish = dialog.get_by_role("button", name="Finish")
    expect(finish).to_be_visible()
    finish.click()
    expect(dialog).to_be_hidden()


def test_slow_internet_attributes_in_more_info(page: Page) -> None:
    """After a test below the new minimum, Slow internet says why, in words."""
    names = ui.entity_names()
    attributes = ui.translations()["entity"]["binary_sensor"]["slow_internet"][
        "state_attributes"
    ]
    cards = ui.open_device(page, ISP_NAME)
    ui.press(cards, names["run_test"])
    expect(ui.entity_row(cards, names["slow_internet"])).to_contain_text(
        "Problem", timeout=90_000
    )

    dialog = ui.open_details(page, cards, names["slow_internet"])

    shown = ui.shown_text(dialog)
    for key in ("violated", "median_download", "min_download", "tests", "measured_to"):
        assert attributes[key]["name"] in shown, key
    for key in attributes:
        assert not re.search(rf"\b{key}\b", shown), key
    page.keyboard.press("Escape")
    expect(dialog.get_by_text("Attributes", exact=True)).to_be_hidden()


def test_blueprints_are_listed_and_one_becomes_an_automation(page: Page) -> None:
    """All shipped blueprints are there; one, filled in, is a working automation."""
    blueprints = ui.blueprints()
    ui.visit(page, "/config/blueprint/dashboard")
    for blueprint in blueprints.values():
        expect(page.get_by_text(blueprint["name"], exact=True)).to_be_visible()

    chosen = blueprints["post_on_start_stop.yaml"]
    page.get_by_text(chosen["name"], exact=True).click()
    expect(
        page.get_by_text(chosen["input"]["tweet_entity"]["name"], exact=True)
    ).to_be_visible()
    page.get_by_text("Select an entity").click()
    # Exact: the input's description names the entity too.
    page.get_by_text(ui.entity_names()["tweet"], exact=True).first.click()
    page.get_by_role("button", name="Save").click()
    # Saved: the editor moves from the new automation to the stored one. Leaving
    # before that would drop the save on a busy machine.
    expect(page).to_have_url(re.compile(r"/config/automation/edit/(?!new)"))

    ui.visit(page, "/config/automation/dashboard")
    expect(page.get_by_text(chosen["name"], exact=True)).to_be_visible()


def test_isp_watch_logged_no_errors(home_assistant: HomeAssistantServer) -> None:
    """The whole walk left no error of ISP Watch, or of any integration, in the log."""
    errors = [
        entry
        for entry in home_assistant.log_errors()
        if not NEEDS_THE_INTERNET.search(entry.partition("\n")[0])
        and not TAB_CLOSED_WHILE_SENDING.search(entry)
    ]
    assert errors == []
