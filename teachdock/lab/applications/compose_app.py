"""The chapter's application, as compose files: a web server, a job that fills a volume they
share, and a client that reaches the server by its service name. Only busybox, so it runs
offline on any daemon that has busybox (teachdockd bootstraps it from this machine's binary).

``SHOP`` is the plain application; ``HEALTHY_SHOP`` gives the web server a health check and a
slow start, and makes the client wait until the server is healthy.
"""

from __future__ import annotations

PROJECT = "td09"

#: One HTTP request with busybox nc (busybox's wget crashes on this machine's busybox build).
FETCH = r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80"

SHOP = f"""\
services:
  job:                      # runs once: writes the page into the shared volume
    image: busybox
    command: ["sh", "-c", "echo hello from the job > /site/index.html"]
    volumes: ["site:/site"]
  web:                      # serves the volume over HTTP on port 80
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/site"]
    init: true              # a tiny init as PID 1: httpd then stops at once on SIGTERM
    volumes: ["site:/site"]
    depends_on: [job]
  client:                   # asks the server by its service name, "web"
    image: busybox
    command: ["sh", "-c", "for try in 1 2 3 4 5; do {FETCH} && exit 0; sleep 1; done; exit 1"]
    depends_on: [web]
volumes:
  site: {{}}
"""

HEALTHY_SHOP = f"""\
services:
  job:
    image: busybox
    command: ["sh", "-c", "echo hello from the job > /site/index.html"]
    volumes: ["site:/site"]
  web:                      # takes 4 s to come up; the health check says when it answers (and prints
                            # the status line it got: the probe's output is kept in its log)
    image: busybox
    command: ["sh", "-c", "sleep 4; exec httpd -f -p 80 -h /site"]
    init: true
    volumes: ["site:/site"]
    healthcheck:
      test: ["CMD-SHELL", "answer=$$(printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 1 127.0.0.1 80 | head -1); echo $$answer; echo $$answer | grep -q '200 OK'"]
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: 8s      # failures while it starts do not count
  client:                   # no retry loop now: it starts only once web is healthy
    image: busybox
    command: ["sh", "-c", "{FETCH}"]
    depends_on:
      web:
        condition: service_healthy
volumes:
  site: {{}}
"""
