"""The staff app: ``kok app``, a local web interface over ``client.Client``.

A small aiohttp server inside the client process, bound to 127.0.0.1, serving
server-rendered pages (Jinja2, KERN UX styles) that work without JavaScript. The keys stay
in this process; see ``security`` for what keeps other pages and users out, ``state`` for
unlocking and the idle lock, ``pages`` and ``admin_pages`` for what each page does.
"""

from .server import make_app
from .server import run as run_app

__all__ = ["make_app", "run_app"]
