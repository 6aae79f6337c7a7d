"""The Prometheus pages `make up` names in its banner answer 200 on the Prometheus it runs
(Debian's package serves only the classic UI, under /classic/: its /targets is a 404)."""

import shutil
import subprocess

import pytest
import requests

from veloz.dev.devstack import PROMETHEUS_PAGES, free_port, prometheus_ui_prefix


@pytest.fixture
def prometheus_url(tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (make test-tools installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(15)


def test_every_page_the_banner_names_answers(prometheus_url):
    prefix = prometheus_ui_prefix(prometheus_url, timeout=30)

    assert prefix is not None
    for page in PROMETHEUS_PAGES:
        answer = requests.get(f"{prometheus_url}{prefix}/{page}", timeout=5)
        assert answer.status_code == 200, page


def test_a_prometheus_that_never_answers_is_reported_as_such():
    assert prometheus_ui_prefix(f"http://127.0.0.1:{free_port()}", timeout=0.5) is None
