#!/usr/bin/env python3
"""Drives the vpcdns console in headless Chromium through chromedriver's WebDriver HTTP API
(standard library only) and checks what a person would see. Used by ConsoleBrowserTests.

Everything stays on this machine: Chromium resolves no name but 127.0.0.1 (every other name
maps to NOTFOUND) and runs with background networking, component updates and sync off.
Every wait is bounded. Exit 0 when every check passed; otherwise exit 1 with the reason.

usage: console-browser-check.py --url URL --listen IP:PORT --legacy IP:PORT --app-vpc ID
       --legacy-vpc ID [--screenshots DIR]
"""
import argparse, base64, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request, urllib.error

XSS_LABEL = "<img src=x onerror=alert(1)>"


def fail(msg):
    print("FAIL: " + msg, flush=True)
    raise SystemExit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Driver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.sid = None

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"{}")

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.sid, path), body)

    def js(self, script, *args):
        r = self.s("POST", "/execute/sync", {"script": script, "args": list(args)})
        v = r.get("value")
        if isinstance(v, dict) and "error" in v:
            fail("script error: %s: %s" % (v.get("error"), v.get("message")))
        return v

    def wait(self, what, script, timeout=10.0, *args):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = self.js(script, *args)
            if v:
                return v
            time.sleep(0.05)
        fail("timed out after %.1f s waiting for %s" % (timeout, what))

    def screenshot(self, path):
        r = self.s("GET", "/screenshot")
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["value"]))

    def console_errors(self):
        r = self.s("POST", "/se/log", {"type": "browser"})
        entries = r.get("value") or []
        if isinstance(entries, dict):
            fail("chromedriver gave no browser log: %s" % entries)
        return [e for e in entries if e.get("level") == "SEVERE"]


SENT = [0]


def dig(server, name, qtype="A"):
    SENT[0] += 1
    ip, port = server.rsplit(":", 1)
    assert ip.startswith("127."), "loopback only"
    subprocess.run(["dig", "@" + ip, "-p", port, name, qtype, "+time=2", "+tries=1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


ROWS = """
return Array.from(document.querySelectorAll('#rows tr')).map(tr =>
  ({vpc: tr.dataset.vpc, decision: tr.dataset.decision, cells: Array.from(tr.cells).map(c => c.textContent)}));
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--legacy", required=True)
    ap.add_argument("--app-vpc", required=True)
    ap.add_argument("--legacy-vpc", required=True)
    ap.add_argument("--screenshots")
    a = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        print("SKIP: chromium or chromedriver is not installed (apt-get install chromium chromium-driver)", flush=True)
        raise SystemExit(77)
    port = free_port()
    profile = tempfile.mkdtemp(prefix="vpcdns-chromium-")
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    cd = subprocess.Popen([chromedriver, "--port=%d" % port, "--allowed-ips=127.0.0.1"], stdout=log, stderr=log)
    d = Driver(port)
    try:
        end = time.monotonic() + 15
        while True:
            try:
                if d.call("GET", "/status", timeout=2).get("value", {}).get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                fail("chromedriver did not become ready")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-default-apps", "--window-size=1400,1200",
                "--user-data-dir=" + os.path.join(profile, "profile")]}}}}
        r = d.call("POST", "/session", caps, timeout=60)
        d.sid = (r.get("value") or {}).get("sessionId")
        if not d.sid:
            fail("no WebDriver session: %s" % r)
        d.s("POST", "/url", {"url": a.url})
        d.wait("the live stream to open", "return document.getElementById('status').textContent === 'live'", 15)
        errs = d.console_errors()
        if errs:
            fail("console errors after load: %s" % errs)
        print("ok: page loaded, stream live, no console errors", flush=True)

        # A query sent after the page opened shows up within 2 s, with its VPC and decision.
        dig(a.listen, "www.myservice.internal")
        sent = time.monotonic()
        d.wait("the app query in the live list", """
          return Array.from(document.querySelectorAll('#rows tr')).some(tr =>
            tr.dataset.vpc === arguments[0] && tr.dataset.decision === 'private-hosted-zone' &&
            tr.cells[3].textContent === 'www.myservice.internal.')""", 2.0, a.app_vpc)
        print("ok: dig shown in %.2f s with VPC %s and decision private-hosted-zone" % (time.monotonic() - sent, a.app_vpc), flush=True)
        dig(a.legacy, "ec2.us-west-2.amazonaws.com")
        dig(a.listen, "nothing-here.myservice.internal")
        d.wait("the legacy query in the live list", """
          return Array.from(document.querySelectorAll('#rows tr')).some(tr =>
            tr.dataset.vpc === arguments[0] && tr.cells[3].textContent === 'ec2.us-west-2.amazonaws.com.')""", 5.0, a.legacy_vpc)
        d.wait("the NXDOMAIN query", "return Array.from(document.querySelectorAll('#rows tr')).some(tr => tr.cells[5].textContent === 'NXDOMAIN')", 5.0)
        print("ok: legacy and NXDOMAIN queries shown", flush=True)

        # Filters: VPC, then decision.
        def select(sel, value):
            d.js("const s = document.getElementById(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change'));", sel, value)
        select("f-vpc", a.legacy_vpc)
        d.wait("only the legacy VPC's rows", """
          const rows = Array.from(document.querySelectorAll('#rows tr'));
          return rows.length > 0 && rows.every(tr => tr.dataset.vpc === arguments[0]) && document.getElementById('status').textContent === 'live'""", 5.0, a.legacy_vpc)
        dig(a.listen, "www.myservice.internal")  # app: must not appear while filtered
        dig(a.legacy, "ec2.us-west-2.amazonaws.com")
        time.sleep(1.5)
        rows = d.js(ROWS)
        if not rows or any(r["vpc"] != a.legacy_vpc for r in rows):
            fail("VPC filter let other rows through: %s" % rows)
        print("ok: VPC filter shows only %s (%d rows)" % (a.legacy_vpc, len(rows)), flush=True)
        select("f-vpc", "")
        select("f-decision", "private-hosted-zone")
        d.wait("only private-hosted-zone rows", """
          const rows = Array.from(document.querySelectorAll('#rows tr'));
          return rows.length > 0 && rows.every(tr => tr.dataset.decision === 'private-hosted-zone')""", 5.0)
        dig(a.legacy, "ec2.us-west-2.amazonaws.com")
        dig(a.listen, "www.myservice.internal")
        time.sleep(1.5)
        rows = d.js(ROWS)
        if not rows or any(r["decision"] != "private-hosted-zone" for r in rows):
            fail("decision filter let other rows through: %s" % rows)
        print("ok: decision filter shows only private-hosted-zone (%d rows)" % len(rows), flush=True)
        select("f-decision", "")
        d.wait("all rows back", """
          const rows = Array.from(document.querySelectorAll('#rows tr'));
          return rows.some(tr => tr.dataset.vpc === arguments[0]) && rows.some(tr => tr.dataset.decision === 'private-hosted-zone')""", 5.0, a.legacy_vpc)

        # A name with markup shows as text and runs nothing. (The log writes it in DNS
        # presentation form, spaces as \032: still an `<img...>` tag if it became markup.)
        dig(a.listen, XSS_LABEL + ".example.com")
        shown = d.wait("the markup name as text", """
          const cells = Array.from(document.querySelectorAll('#rows td.name')).filter(td => td.textContent.startsWith('<img'));
          return cells.length > 0 ? cells.map(td => [td.textContent, td.childElementCount]) : null""", 5.0)
        for text, children in shown:
            if children != 0 or "onerror=alert" not in text:
                fail("the markup name did not stay text: %r (%d child elements)" % (text, children))
        odd = d.js("return Array.from(document.querySelectorAll('#rows *')).filter(e => !['TR', 'TD'].includes(e.tagName)).map(e => e.tagName)")
        if odd:
            fail("the live list holds elements a record made: %s" % odd)
        d.js("""for (const tr of document.querySelectorAll('#rows tr')) if (tr.cells[3].textContent.startsWith('<img')) { tr.click(); break; }""")
        d.wait("the markup name's explanation", "return document.getElementById('x-title').textContent.startsWith('<img') && document.getElementById('x-summary').textContent.length > 0", 5.0)
        if d.js("return document.querySelectorAll('#explain *').length !== document.querySelectorAll('#explain h3, #explain h4, #explain dl, #explain dt, #explain dd, #explain ul, #explain li, #explain details, #explain summary, #explain pre, #explain code').length"):
            fail("the explanation holds elements a record made")
        if d.js("return document.querySelectorAll('img').length") != 0:
            fail("a query name became an <img> element")
        alert = d.s("GET", "/alert/text").get("value")
        if not (isinstance(alert, dict) and alert.get("error") == "no such alert"):
            fail("an alert is open: the name ran as script: %s" % alert)
        print("ok: %s shown as text (%r), nothing ran" % (XSS_LABEL, shown[0][0]), flush=True)

        # One click from a line to its explanation.
        d.js("""for (const tr of document.querySelectorAll('#rows tr')) if (tr.dataset.vpc === arguments[0] && tr.cells[3].textContent === 'ec2.us-west-2.amazonaws.com.') { tr.click(); break; }""", a.legacy_vpc)
        text = d.wait("the explanation of the legacy line", """
          const t = document.getElementById('x-summary').textContent;
          return t.includes(arguments[0]) && t.includes('enable_dns_hostnames=false') ? document.getElementById('explain').innerText : null""", 5.0, a.legacy_vpc)
        for needle in [a.legacy_vpc, "how chosen", "resolver_address", "enable_dns_hostnames=false"]:
            if needle not in text:
                fail("explanation lacks %r:\n%s" % (needle, text))
        print("ok: explanation shows the VPC, how it was chosen (resolver_address) and the reason enable_dns_hostnames=false", flush=True)
        d.js("document.getElementById('explain').scrollIntoView()")
        if a.screenshots:
            d.screenshot(os.path.join(a.screenshots, "console-explain.png"))
            d.js("window.scrollTo(0, 0)")
            d.screenshot(os.path.join(a.screenshots, "console-live.png"))

        # The chart shows every query this test sent (this server answered no other).
        total = d.wait("the chart's bars", """
          const bars = Array.from(document.querySelectorAll('#chart rect.bar'));
          const n = bars.reduce((s, b) => s + Number(b.getAttribute('data-count')), 0);
          return n === arguments[0] && document.querySelectorAll('#chart rect.bar-error').length > 0 ? n : 0""", 6.0, SENT[0])
        print("ok: chart shows the %d queries sent, SERVFAILs among them" % total, flush=True)
        if a.screenshots:
            d.js("document.getElementById('summary').scrollIntoView()")
            d.screenshot(os.path.join(a.screenshots, "console-chart.png"))
        errs = d.console_errors()
        if errs:
            fail("console errors: %s" % errs)
        print("ok: no console errors at the end", flush=True)
    finally:
        if d.sid:
            try:
                d.call("DELETE", "/session/" + d.sid, timeout=10)
            except OSError:
                pass
        cd.terminate()
        try:
            cd.wait(timeout=5)
        except subprocess.TimeoutExpired:
            cd.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
