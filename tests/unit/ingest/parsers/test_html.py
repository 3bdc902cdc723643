from __future__ import annotations

from strata.ingest import parse_document

PAGE = b"""<!DOCTYPE html><html><head><title>Install guide</title></head><body>
<header class="site"><a href="/">Acme</a> <span>Products Pricing Blog</span></header>
<div id="cookie-banner">We use cookies. <button>Accept all</button></div>
<div class="sidebar" role="complementary">Popular posts</div>
<nav>Home | Docs</nav>
<main>
  <article>
    <header><h1>Install</h1><p class="byline">By the docs team</p></header>
    <p>Read this first.</p>
    <h2>
       On Linux
    </h2>
    <p>Use the <b>package</b> manager.</p>
    <h3>Debian</h3><p>apt install acme</p>
    <h2>On macOS</h2><p>Use brew.</p>
    <aside>Related: uninstalling</aside>
    <form><label>Was this helpful?</label><input type="text"></form>
    <div hidden>secret draft</div>
  </article>
</main>
<footer>Copyright Acme. Imprint. Privacy.</footer>
</body></html>"""


def test_html_keeps_the_main_content_and_drops_site_chrome() -> None:
    text = parse_document(PAGE, key="install.html").pages[0].text

    assert text == (
        "Install\n\nBy the docs team\n\nRead this first.\n\nOn Linux\n\nUse the package manager.\n\n"
        "Debian\n\napt install acme\n\nOn macOS\n\nUse brew."
    )


def test_html_headings_become_sections_starting_at_the_heading_text() -> None:
    page = parse_document(PAGE, key="install.html").pages[0]

    assert [section.heading_path for section in page.sections] == [
        ("Install",),
        ("Install", "On Linux"),
        ("Install", "On Linux", "Debian"),
        ("Install", "On macOS"),
    ]
    for section in page.sections:
        assert page.text[section.char_start :].startswith(section.heading_path[-1])


def test_html_without_main_reads_the_body_less_boilerplate() -> None:
    html = b"""<html><body><header>Site name</header><div class="cc-consent">Cookies?</div>
    <h1>Shipping</h1><p>We ship <em>daily</em>.</p><div style="display: none">tracking</div>
    <footer>Contact</footer><script>track()</script></body></html>"""

    page = parse_document(html, key="ship.htm").pages[0]

    assert page.text == "Shipping\n\nWe ship daily."
    assert page.sections[0].heading_path == ("Shipping",)


def test_html_content_about_cookies_is_kept() -> None:
    html = b'<html><body><div class="cookie-recipe"><h1>Cookies</h1><p>Bake 12 minutes.</p></div></body></html>'

    assert parse_document(html, key="recipe.html").pages[0].text == "Cookies\n\nBake 12 minutes."
