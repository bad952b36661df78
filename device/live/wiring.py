"""The GPT-Live parts of the app: its conversation core and session manager, from the config.

:class:`device.app.App` calls :func:`live_parts` when ``[realtime] api = "live"``; everything
else (pipeline, controls, tools, bus, LEDs, control socket) is the same for both APIs. The
microphone then runs in the ``continuous`` turn mode (``[turns] mode`` does not apply: the model
takes the turns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connection import LiveEndpoint
from .conversation import LiveConversation, LiveSettings
from .manager import LiveOptions, LiveSessionManager
from .models import FunctionTool

if TYPE_CHECKING:
    from ..app import App


def live_options(app: App, given: Any = None) -> LiveOptions:
    """LiveOptions from the config; a test's Realtime ``Options`` lends its link settings."""
    if isinstance(given, LiveOptions):
        return given
    options = LiveOptions(fatal_retry_s=app.config.realtime.fatal_retry)
    if given is not None:
        for name in ("fatal_retry_s", "backoff_base_s", "backoff_cap_s", "open_timeout_s",
                     "ping_interval_s", "ping_timeout_s", "healthy_s"):
            setattr(options, name, getattr(given, name))
    return options


def live_settings(app: App) -> LiveSettings:
    rt = app.config.realtime
    tools = tuple(FunctionTool(name=t.name, description=t.description or None, parameters=t.parameters)
                  for t in app.tools.tools())
    return LiveSettings(model=rt.model, instructions=rt.instructions, voice=rt.voice, tools=tools,
                        delegation_model=rt.delegation_model)


def live_endpoint(app: App) -> LiveEndpoint:
    endpoint = app.endpoint()
    return LiveEndpoint(url=endpoint.url, model=endpoint.model, api_key=endpoint.api_key)


def live_parts(app: App, options: Any = None) -> tuple[LiveConversation, LiveSessionManager]:
    rt = app.config.realtime
    conversation = LiveConversation(idle_close_s=rt.idle_close, frame_ms=app.turns.frame_ms)
    manager = LiveSessionManager(endpoint=lambda: live_endpoint(app), settings=lambda: live_settings(app),
                                 conversation=conversation, pipeline=app.pipeline, run_tool=app.tools.run,
                                 options=live_options(app, options), publish=app.publish)
    return conversation, manager


def reload(app: App) -> None:
    """A SIGHUP under Live: the idle time now; url, model, voice and key with the next session."""
    manager = app.manager
    if isinstance(manager, LiveSessionManager):
        manager.options.fatal_retry_s = app.config.realtime.fatal_retry
        manager.conversation.idle_timer.idle_close_s = app.config.realtime.idle_close


async def start_simulator(app: App) -> Any:
    from ..simulator.live_server import LiveSimulator
    from ..simulator.live_session import LiveSimOptions

    rt = app.config.realtime
    return await LiveSimulator(LiveSimOptions(session_limit_s=rt.session_limit,
                                              speedup=rt.simulator_speedup)).start()
