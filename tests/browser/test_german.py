"""ISP Watch set up by a user whose Home Assistant speaks German.

A Home Assistant of its own: the user onboards, picks German in the profile, and adds
ISP Watch. The form must speak German from translations/de.json, with no English left
and no raw translation key.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser import ui

LANGUAGE = "de"
# The language as the profile's language picker lists it.
LANGUAGE_NAME = "Deutsch"
ISP_NAME = "Beispiel-ISP"
PLAN = {"contract_maximum_download": "100", "contract_maximum_upload": "40"}
LIMITS = {"min_download": "30", "min_upload": "10", "max_ping": "100"}
ABOVE_PLAN = "150"


def test_setup_form_in_german(page: Page) -> None:
    """Labels, help texts, errors and the menu of the setup come from de.json."""
    german = ui.translations(LANGUAGE)["config"]
    user_step = german["step"]["user"]
    ui.onboard(page, name="Tester", username="tester", password="correct-horse-42")
    ui.choose_language(page, LANGUAGE, LANGUAGE_NAME)

    dialog = ui.start_adding_integration(page, LANGUAGE)

    # The German title and exactly the German labels, and no raw key.
    ui.show_step(dialog, user_step)
    shown = ui.shown_text(dialog)
    for text in [user_step["description"], *user_step["data_description"].values()]:
        assert text in shown, text

    # An error speaks German too, with its placeholder filled in.
    ui.fill_step(
        dialog,
        user_step,
        {"isp_name": ISP_NAME} | PLAN | LIMITS | {"min_download": ABOVE_PLAN},
    )
    ui.submit(dialog, LANGUAGE)
    error = german["error"]["download_above_plan"].format(**PLAN)
    expect(dialog.get_by_text(error)).to_be_visible()
    assert not ui.RAW_TEXT.search(ui.shown_text(dialog))

    ui.fill_step(dialog, user_step, {"min_download": LIMITS["min_download"]})
    ui.submit(dialog, LANGUAGE)
    ui.choose(dialog, german["step"]["x_account_choice"], "finish")

    # The entry is created: Home Assistant offers to finish, naming the device.
    texts = ui.frontend_texts(LANGUAGE)
    finish_texts = (
        texts["ui.panel.config.integrations.config_flow.finish"],
        texts["ui.panel.config.integrations.config_flow.finish_skip"],
    )
    finish = dialog.get_by_role(
        "button", name=re.compile("|".join(f"^{re.escape(t)}$" for t in finish_texts))
    )
    expect(finish).to_be_visible()
    expect(dialog.locator("input").first).to_have_value(ISP_NAME)
    finish.click()
    expect(dialog).to_be_hidden()
