"""Placeholder: the kube front end."""
from aiohttp import web


def create_app(runtime, settings) -> web.Application:
    return web.Application()
