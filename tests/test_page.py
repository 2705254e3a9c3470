"""The clinician's page in a real headless Chromium (Selenium with Debian's chromium-driver).

The service runs on 127.0.0.1 in a thread of this process; the browser fills
the form as a clinician would and reads the page. Screenshots go to
``tests/artifacts/`` (not committed) for a reviewer to look at. ``.ci/run``
installs Chromium and sets REQUIRE_BROWSER=1, so that in CI a missing browser
fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import engine
from engine.frontends.service import create_app

from .conftest import DAY, SHIPPED
from .test_service import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("REQUIRE_BROWSER is set but chromium or chromedriver is missing")
    pytest.skip("no chromium/chromedriver on this machine (.ci/run installs them)", allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only with a browser
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    app = create_app([engine.load(SHIPPED)], today=DAY)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1800", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def open_page(browser: webdriver.Chrome, site: str) -> None:
    browser.get(site + "/")
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    set_value(browser, "date", DAY.isoformat())


def set_value(browser: webdriver.Chrome, element_id: str, value: str) -> None:
    """For date inputs, whose typing depends on the browser's locale."""
    browser.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                           "e.dispatchEvent(new Event('change', {bubbles: true}));", element_id, value)


def choose(browser: webdriver.Chrome, fact: str, value: str) -> None:
    Select(browser.find_element(By.ID, f"f-{fact}")).select_by_value(value)


def radio(browser: webdriver.Chrome, fact: str, value: bool) -> None:
    browser.find_element(By.ID, f"f-{fact}-{'true' if value else 'false'}").click()


def typed(browser: webdriver.Chrome, fact: str, text: str, unit: str | None = None) -> None:
    field = browser.find_element(By.ID, f"f-{fact}")
    field.clear()
    field.send_keys(text)
    if unit:
        Select(browser.find_element(By.ID, f"f-{fact}-unit")).select_by_value(unit)


def fill_example_patient(browser: webdriver.Chrome, vitamin_d: str | None = "42") -> None:
    for fact, value in (("bone_metastases", True), ("life_expectancy_over_3_months", True), ("skeletal_event", False),
                        ("high_risk_lesions", True), ("emergency", False), ("dental_assessment_done", False),
                        ("dental_care_needed", False), ("recent_tooth_extraction", False), ("exposed_jaw_bone", False)):
        radio(browser, fact, value)
    choose(browser, "bone_pattern", "multiple")
    choose(browser, "current_agent", "none")
    typed(browser, "zoledronic_infusions_given", "0")
    if vitamin_d is not None:
        typed(browser, "vitamin_d_25oh", vitamin_d, "nmol/L")
    typed(browser, "dietary_calcium", "600")
    typed(browser, "serum_creatinine", "1.1", "mg/dL")
    typed(browser, "age", "72")
    typed(browser, "weight", "58")
    choose(browser, "sex", "female")
    browser.find_element(By.CSS_SELECTOR, "input[name='f-comedications'][value='corticosteroids']").click()


def text_of(browser: webdriver.Chrome, element_id: str, containing: str, timeout: float = 30) -> str:
    """The text of an element once it contains ``containing`` (the page evaluates as one types).

    The text is read inside the wait: the page may render the element again between a wait
    and a later read (a stale element), which made this test fail now and then.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    found: dict[str, str] = {}

    def ready(driver: webdriver.Chrome) -> bool:
        elements = driver.find_elements(By.ID, element_id)
        text = str(elements[0].text) if elements else ""
        if containing in text:
            found["text"] = text
            return True
        return False

    WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(ready)
    return found["text"]


def screenshot(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_example_patient_shows_dose_and_vitamin_d_scheme(browser, site) -> None:
    open_page(browser, site)
    fill_example_patient(browser)
    dose = text_of(browser, "rec-zoledronic-administration", "3,3 mg")
    assert "Acide zolédronique 3,3 mg pour une clairance de 42,33 mL/min" in dose
    scheme = text_of(browser, "rec-vitamin-d-loading-8", "8 semaines")
    assert "cholécalciférol 50 000 UI une fois par semaine pendant 8 semaines" in scheme
    assert "Schéma: recharge: 8 prises: 50\u202f000 UI toutes les semaines ; puis entretien" in scheme
    assert "Début différé" in text_of(browser, "start-decision", "Début différé")
    assert browser.find_element(By.ID, "group-caution").is_displayed()
    why = browser.find_element(By.CSS_SELECTOR, "#rec-zoledronic-administration details")
    why.find_element(By.TAG_NAME, "summary").click()
    assert "40–49 mL/min → 3,3 mg (Clairance de la créatinine 42,33 mL/min)" in why.text
    assert "Source: §2.4 Tableau 2" in why.text
    screenshot(browser, "example-patient-fr")


def test_unknown_vitamin_d_asks_to_measure_and_highlights_the_field(browser, site) -> None:
    open_page(browser, site)
    fill_example_patient(browser, vitamin_d=None)
    assert "Doser la 25-OH vitamine D" in text_of(browser, "rec-measure-vitamin-d", "Doser")
    assert "doser la vitamine D" in text_of(browser, "start-decision", "doser")
    WebDriverWait(browser, 30).until(
        lambda d: "needed" in d.find_element(By.ID, "f-vitamin_d_25oh-box").get_attribute("class"))
    assert "25-OH vitamine D" in browser.find_element(By.ID, "undetermined").text
    screenshot(browser, "vitamin-d-unknown")


def test_switching_to_english_keeps_the_inputs(browser, site) -> None:
    open_page(browser, site)
    fill_example_patient(browser)
    text_of(browser, "rec-zoledronic-administration", "3,3 mg")
    browser.find_element(By.CSS_SELECTOR, "button[data-lang='en']").click()
    assert "Zoledronic acid 3.3 mg for a clearance of 42.33 mL/min" in text_of(
        browser, "rec-zoledronic-administration", "Zoledronic acid")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.find_element(By.CSS_SELECTOR, "label[for='f-age']").text == "Age (years)"
    screenshot(browser, "example-patient-en")


def test_print_view_states_guideline_date_and_inputs(browser, site) -> None:
    open_page(browser, site)
    fill_example_patient(browser)
    text_of(browser, "rec-zoledronic-administration", "3,3 mg")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not browser.find_element(By.ID, "patient").is_displayed()
    summary = browser.find_element(By.ID, "summary")
    assert summary.is_displayed()
    assert "2026-11-27" in summary.text and "72" in summary.text and "42 nmol/L (= 16,8 ng/mL)" in summary.text
    header = browser.find_element(By.TAG_NAME, "header").text
    assert "Traitement osseux systémique" in header and "version 1.1.0" in header
    screenshot(browser, "print-view")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_keyboard_only(browser, site) -> None:
    open_page(browser, site)
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    seen = []
    for _ in range(12):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        seen.append(browser.switch_to.active_element.get_attribute("id") or
                    browser.switch_to.active_element.get_attribute("data-lang") or "")
    assert "en" in seen and "date" in seen and "f-bone_metastases-unknown" in seen, seen
    # Arrow keys choose within the radio group, Enter on a focused language button switches language.
    browser.find_element(By.ID, "f-bone_metastases-unknown").send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "f-bone_metastases-true").is_selected()
    english = browser.find_element(By.CSS_SELECTOR, "button[data-lang='en']")
    browser.execute_script("arguments[0].focus()", english)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "form-title").text == "Patient"
                                     and d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    for field in browser.find_elements(By.CSS_SELECTOR, "#fields input, #fields select"):
        labelled = field.get_attribute("id") and (
            browser.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']")
            or field.get_attribute("aria-label")
            or browser.execute_script("return arguments[0].closest('label') !== null", field))
        assert labelled, field.get_attribute("id")


def test_implausible_creatinine_shows_the_engine_message_next_to_the_field(browser, site) -> None:
    open_page(browser, site)
    fill_example_patient(browser)
    typed(browser, "serum_creatinine", "99999", "mg/dL")
    message = text_of(browser, "f-serum_creatinine-error", "plausible")
    assert "outside the plausible range 15 to 2000 µmol/L" in message
    assert browser.find_element(By.ID, "f-serum_creatinine").get_attribute("aria-invalid") == "true"
    screenshot(browser, "implausible-creatinine")


def _luminance(hex_color: str) -> float:
    channels = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_colours_meet_wcag_aa_contrast() -> None:
    """Every text colour of the stylesheet on the background it is used on: at least 4.5:1 (WCAG 2 AA)."""
    import re

    css = (Path(engine.__file__).parent / "frontends" / "web" / "style.css").read_text(encoding="utf-8")
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
    pairs = [("ink", "#ffffff"), ("muted", "#ffffff"), ("link", "#ffffff"), ("warn", colours["warn-bg"]),
             ("crit", colours["crit-bg"]), ("ok", colours["ok-bg"]), ("ink", colours["need"]), ("ink", "#f1f1f1"),
             ("crit", "#ffffff")]
    for text, background in pairs:
        a, b = _luminance(colours[text]), _luminance(background)
        ratio = (max(a, b) + 0.05) / (min(a, b) + 0.05)
        assert ratio >= 4.5, (text, background, round(ratio, 2))
