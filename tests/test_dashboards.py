"""The dashboards in a real browser (headless Chromium from Debian's packages, driven by
Selenium through Debian's chromedriver): after a run of the whole recipe (trained tiny), the
ZenML dashboard shows the run and its steps, the MLflow UI the registered model and its lineage tags.
Screenshots are kept under the test's temp dir (printed). `make test-browser` runs this."""

import shutil
import socket
import time

import pytest

from tests.runners.test_data_curation_pipeline import _config, _small_pool
from tests.support.training_fixtures import tiny_recipe_overrides

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "needs Debian's chromium and chromium-driver (`make test-browser` installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # loopback only: every other host fails to resolve, so nothing leaves the machine
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,6000", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(120)
    yield session
    session.quit()


def _page_shows(browser, url, texts, screenshot, timeout=90):
    browser.get(url)
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = browser.find_element("tag name", "body").text
        if all(text in body for text in texts):
            break
        time.sleep(1)
    browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")
    missing = [text for text in texts if text not in body]
    assert not missing, f"{url} does not show {missing}; it shows: {body[:2000]}"


def test_dashboards_show_the_run_its_steps_and_the_model_with_its_tags(dvc_project, monkeypatch, tmp_path, browser):
    from photogenic.runtime import prepare_environment

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    _small_pool(dvc_project)
    monkeypatch.chdir(dvc_project)
    prepare_environment(dvc_project)
    from mlflow import MlflowClient
    from zenml.client import Client

    from photogenic.dashboards import start_mlflow_ui, start_zenml_dashboard, stop_zenml_dashboard
    from photogenic.lineage import tags as T
    from pipelines.run import run_pipeline

    # the whole recipe, trained tiny: the model version and its lineage tags come from the pipeline
    config = _config(dvc_project, *tiny_recipe_overrides(dvc_project / "data", steps=2))
    run_pipeline("emu", config, progress=False)
    run = Client().get_pipeline("emu").last_run
    candidates = run.steps["version_auto_filter"].outputs["versioned_dataset"][0].load()
    tuned = run.steps["quality_tune"].outputs["quality_tuned_model"][0].load()
    client = MlflowClient()
    version = client.get_model_version(T.DEFAULT_MODEL, tuned.model_version)
    assert version.tags[T.DVC_MD5 + "candidates"] == candidates.dvc_md5
    shots = tmp_path / "screenshots"
    shots.mkdir()
    zenml_url = start_zenml_dashboard(_free_port())
    try:
        _page_shows(browser, f"{zenml_url}/projects/default/runs/{run.id}",
                    # the DAG draws the steps in view; the overview counts them all
                    [run.name, "ingest", "auto_filter", "version_auto_filter", "Total Steps", str(len(run.steps))],
                    shots / "zenml-run.png")
        process, mlflow_url = start_mlflow_ui(f"sqlite:///{tmp_path / 'mlflow.db'}", _free_port())
        try:
            _page_shows(browser, f"{mlflow_url}/#/models/{T.DEFAULT_MODEL}/versions/{version.version}",
                        [T.DEFAULT_MODEL, "quality_tune", T.DVC_MD5 + "candidates", candidates.dvc_md5],
                        shots / "mlflow-model.png")
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        stop_zenml_dashboard()
