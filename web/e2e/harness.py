"""What the viewer's browser scripts share: a copy of web/dist served on
127.0.0.1 with extra files beside it, and headless Chromium through
Selenium with the flags this machine needs (no network, fresh profile)."""
import functools
import http.server
import os
import shutil
import socketserver
import tempfile
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def serve(files):
    """Copies web/dist into a temporary folder, adds `files` (a dict of
    served name -> bytes or source path), serves it on 127.0.0.1 from a
    background thread. Returns (base URL, folder)."""
    folder = tempfile.mkdtemp(prefix="pgq-web-")
    os.rmdir(folder)
    shutil.copytree(os.path.join(ROOT, "web", "dist"), folder)
    for name, content in files.items():
        target = os.path.join(folder, name)
        if isinstance(content, bytes):
            with open(target, "wb") as f:
                f.write(content)
        else:
            shutil.copy(content, target)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % server.server_address[1], folder


def chromium(width=1400, height=1000):
    """Headless Chromium (Debian's chromium + chromium-driver)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=%d,%d" % (width, height), "--user-data-dir=" + tempfile.mkdtemp()]:
        opts.add_argument(a)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=opts)
