import json
import re

import altair as alt
import pytest

from sac_lit.utils import kernel_free, pick, quick_mode


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_follows_env(monkeypatch, value, expected):
    monkeypatch.setenv("SAC_LIT_QUICK", value)
    assert quick_mode() is expected
    assert pick("full", "quick") == ("quick" if expected else "full")


def test_kernel_free_chart_embeds_spec(monkeypatch):
    p = alt.param(name="p", value=0.3, bind=alt.binding_range(min=0, max=1))
    chart = alt.Chart(alt.Data(values=[{}])).mark_text().encode(text="t:N").transform_calculate(t="p").add_params(p)
    monkeypatch.setenv("SAC_LIT_BOOK", "1")
    html = kernel_free(chart, div_id="x1")._repr_mimebundle_()["text/html"]
    assert '<div id="x1"' in html and "sac_lit: Vega bundle" not in html
    spec = json.loads(re.search(r"vegaEmbed\(el, (.*), \{\"renderer\"", html, re.S).group(1))
    assert spec["params"][0]["name"] == "p" and spec["params"][0]["bind"]["input"] == "range"
    monkeypatch.delenv("SAC_LIT_BOOK")
    assert kernel_free(chart).to_html().count("sac_lit: Vega bundle") == 1
