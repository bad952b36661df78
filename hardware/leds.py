"""Status LEDs: a pattern per device state, one animator, small backends.

Patterns are pure data with a frame function (``colour_at(t)``), so what a person sees can be
tested without a clock. :class:`LedAnimator` writes frames to any :class:`Leds` backend only
when they change: blinks cost two writes a period, pulses 20 frames a second, solids one write.
A pulse's frames are drawn on the loop's other wake-ups when it has them (:meth:`LedAnimator.tick`,
called after each microphone period): a wake-up of the process costs more here than the frame.

Backends: single-colour GPIO LEDs (gpiozero ``PWMLED``, or ``LED`` where there is no PWM),
an RGB LED (gpiozero ``RGBLED``), the APA102 strips of the ReSpeaker HATs (SPI, through the
``apa102-pi`` library), and :class:`SimLeds`, which records and can draw in a terminal.
A plain on/off LED shows idle (a dim glow) as off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import GpioUnavailable

logger = logging.getLogger(__name__)
RGB = tuple[float, float, float]
OFF: RGB = (0.0, 0.0, 0.0)
PULSE_FPS = 20
#: While ticks come at least every TICK_TRUST_S (a pulse's frame and a half), a pulse is drawn
#: on them and the animator's own timer only wakes every TICKED_WAKE_S (in case they stop)
TICK_TRUST_S = 1.5 / PULSE_FPS
TICKED_WAKE_S = 0.5


@dataclass(frozen=True)
class Pattern:
    """``solid``: colour at ``level``. ``blink``: on for ``on_s``, off for ``off_s``.
    ``pulse``: fade in over ``on_s``, out over ``off_s``. ``off``: dark."""

    kind: str
    color: RGB = (1.0, 1.0, 1.0)
    level: float = 1.0
    on_s: float = 0.0
    off_s: float = 0.0

    def colour_at(self, t: float) -> RGB:
        """The colour ``t`` seconds after the pattern started."""
        if self.kind == "off":
            return OFF
        if self.kind == "solid":
            return _scale(self.color, self.level)
        on, period, phase = self._phase_us(t)
        if self.kind == "blink":
            return _scale(self.color, self.level) if phase < on else OFF
        # pulse: raised cosine up over on_s, down over off_s
        x = phase / on if phase < on else 1 - (phase - on) / (period - on)
        return _scale(self.color, self.level * (0.5 - 0.5 * math.cos(math.pi * x)))

    def next_change(self, t: float) -> float | None:
        """When the colour next changes after ``t``, or None if it never does."""
        if self.kind in ("off", "solid"):
            return None
        if self.kind == "pulse":
            return t + 1.0 / PULSE_FPS
        on, period, phase = self._phase_us(t)
        return t + ((on - phase) if phase < on else (period - phase)) / 1e6

    def _phase_us(self, t: float) -> tuple[int, int, int]:
        # Whole microseconds: float modulo puts 0.6 s into the wrong half of a 0.4 s blink.
        on, period = round(self.on_s * 1e6), round((self.on_s + self.off_s) * 1e6)
        return on, period, round(t * 1e6) % period


def _scale(color: RGB, k: float) -> RGB:
    return (color[0] * k, color[1] * k, color[2] * k)


#: What each state looks like. On one plain LED they differ by rhythm alone: idle dim
#: (off without PWM), listening steady, thinking 2.5 Hz blink, speaking slow breathing,
#: muted a short blip every 2 s, offline a slow 0.5 Hz blink, error a 6 Hz flicker.
PATTERNS: dict[str, Pattern] = {  # keyed by device state name (device.state.DeviceState)
    "idle": Pattern("solid", (0.2, 0.4, 1.0), level=0.1),
    "listening": Pattern("solid", (0.0, 0.4, 1.0)),
    "thinking": Pattern("blink", (0.6, 0.0, 1.0), on_s=0.2, off_s=0.2),
    "speaking": Pattern("pulse", (0.0, 1.0, 0.3), on_s=0.6, off_s=0.6),
    "muted": Pattern("blink", (1.0, 0.0, 0.0), on_s=0.12, off_s=1.88),
    "offline": Pattern("blink", (1.0, 0.5, 0.0), on_s=1.0, off_s=1.0),
    "error": Pattern("blink", (1.0, 0.0, 0.0), on_s=0.08, off_s=0.08),
}


class Leds(Protocol):
    """A set of LEDs showing one colour (0..1 per channel, before the configured brightness)."""

    def set_color(self, rgb: RGB) -> None: ...
    def close(self) -> None: ...


class NullLeds:
    """No LEDs (none fitted, or GPIO unavailable): the device works without them."""

    def set_color(self, rgb: RGB) -> None:
        pass

    def close(self) -> None:
        pass


class SimLeds:
    """Simulated LEDs: keep a history of (time, colour) and optionally draw in a terminal."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, draw: bool = False) -> None:
        self.clock = clock
        self.draw = draw
        self.history: list[tuple[float, RGB]] = []
        self.closed = False

    @property
    def color(self) -> RGB:
        return self.history[-1][1] if self.history else OFF

    def set_color(self, rgb: RGB) -> None:
        self.history.append((self.clock(), rgb))
        if self.draw:
            r, g, b = (int(255 * min(1.0, c)) for c in rgb)
            sys.stdout.write(f"\r\x1b[48;2;{r};{g};{b}m    \x1b[0m ")
            sys.stdout.flush()

    def close(self) -> None:
        self.set_color(OFF)
        self.closed = True


class GpioLeds:
    """One or several single-colour LEDs on GPIO pins, all showing the same pattern."""

    def __init__(self, pins: tuple[int, ...], *, active_high: bool = True, brightness: float = 1.0,
                 pwm: bool = True, pin_factory: object = None) -> None:
        from gpiozero import LED, PWMLED

        cls = PWMLED if pwm else LED
        self.brightness = brightness
        self.pwm = pwm
        self.leds = [cls(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory) for pin in pins]

    def set_color(self, rgb: RGB) -> None:
        level = max(rgb)
        for led in self.leds:
            led.value = level * self.brightness if self.pwm else level >= 0.5

    def close(self) -> None:
        for led in self.leds:
            led.off()
            led.close()


class RgbLed:
    """One RGB LED on three PWM pins."""

    def __init__(self, pins: tuple[int, int, int], *, active_high: bool = True, brightness: float = 1.0,
                 pin_factory: object = None) -> None:
        from gpiozero import RGBLED

        self.brightness = brightness
        self.led = RGBLED(*pins, active_high=active_high, pwm=True, pin_factory=pin_factory)

    def set_color(self, rgb: RGB) -> None:
        self.led.color = tuple(min(1.0, c * self.brightness) for c in rgb)

    def close(self) -> None:
        self.led.off()
        self.led.close()


class Apa102Strip:
    """The APA102 LEDs of the ReSpeaker 2-mic (3) and 4-mic (12) HATs, over SPI.

    Some HAT revisions switch the LEDs' power with a GPIO (``power_pin``)."""

    def __init__(self, count: int, *, brightness: float = 0.3, power_pin: int | None = None,
                 power_active_high: bool = True, pin_factory: object = None) -> None:
        try:
            from apa102_pi.driver import apa102
        except ModuleNotFoundError as exc:
            raise GpioUnavailable(f"the APA102 LED driver is not installed ({exc.name})",
                                  fix="pip install apa102-pi (install.sh does this for ReSpeaker presets), "
                                      "and enable SPI with raspi-config") from None
        except (ImportError, RuntimeError, NotImplementedError) as exc:
            # apa102-pi is there, but Adafruit Blinka under it does not recognise this board
            raise GpioUnavailable(f"the APA102 LED driver cannot run here (Adafruit Blinka: {exc})",
                                  fix="on a Raspberry Pi: pip install apa102-pi gpiod (install.sh does this) "
                                      "and enable SPI (dtparam=spi=on)") from None
        self.power = None
        if power_pin is not None:
            from gpiozero import LED

            self.power = LED(power_pin, active_high=power_active_high, pin_factory=pin_factory)
            self.power.on()
        try:
            self.strip = apa102.APA102(num_led=count, order="rgb", global_brightness=31)
        except (OSError, FileNotFoundError) as exc:
            raise GpioUnavailable(f"cannot open the SPI bus for the APA102 LEDs: {exc}",
                                  fix="enable SPI (raspi-config, dtparam=spi=on) "
                                      "and add the user to the spi group") from None
        self.count = count
        self.brightness = brightness

    def set_color(self, rgb: RGB) -> None:
        r, g, b = (int(255 * min(1.0, c)) for c in rgb)
        for i in range(self.count):
            self.strip.set_pixel(i, r, g, b, int(100 * self.brightness))
        self.strip.show()

    def close(self) -> None:
        self.strip.clear_strip()
        self.strip.cleanup()
        if self.power:
            self.power.off()
            self.power.close()


class LedAnimator:
    """Shows one pattern at a time on a backend; :meth:`run` animates it in the event loop."""

    def __init__(self, leds: Leds, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.leds = leds
        self.clock = clock
        self.pattern = Pattern("off")
        self._started = clock()
        self._last: RGB | None = None
        self._changed = asyncio.Event()
        self._due: float | None = None       # when the next frame is due (None: never)
        self._ticked = float("-inf")
        self._tick_gap = float("inf")         # between the last two ticks
        self._tick_failed = False
        self.wakes = 0                        # times run() woke on its own timer or a change

    def show(self, pattern: Pattern) -> None:
        if pattern != self.pattern:
            self.pattern = pattern
            self._started = self.clock()
            self._due = self.render(self._started)
            self._changed.set()

    def tick(self, now: float | None = None) -> None:
        """The loop is awake for something else (a microphone period): draw a pulse's frame if
        one is due, so the pulse needs no wake-up of its own while these come. Blinks keep
        their own timer (an edge waiting for the next period would be up to 100 ms late)."""
        now = self.clock() if now is None else now
        self._tick_gap, self._ticked = now - self._ticked, now
        if self.pattern.kind == "pulse" and self._due is not None and now >= self._due - 0.5 / PULSE_FPS:
            if self._tick_failed:
                return
            try:
                self._due = self.render(now)
            except Exception:   # the driver: said once; run() meets it on its own timer and ends
                self._tick_failed = True
                logger.exception("the LEDs failed; their animation stops")

    def render(self, now: float) -> float | None:
        """Write the frame for ``now`` if it differs; return when the next frame is due."""
        t = now - self._started
        colour = self.pattern.colour_at(t)
        if colour != self._last:
            self.leds.set_color(colour)
            self._last = colour
        nxt = self.pattern.next_change(t)
        return None if nxt is None else self._started + nxt

    async def run(self) -> None:
        """Animate until cancelled; on the way out the LEDs go off and are released."""
        try:
            while True:
                self.wakes += 1
                now = self.clock()
                due = self._due = self.render(now)
                self._changed.clear()
                timeout = None if due is None else max(0.0, due - self.clock())
                ticking = now - self._ticked < TICK_TRUST_S and self._tick_gap <= TICK_TRUST_S
                if due is not None and self.pattern.kind == "pulse" and ticking and not self._tick_failed:
                    timeout = TICKED_WAKE_S     # tick() draws it
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):   # wait_for could swallow a cancellation
                        await self._changed.wait()
        finally:
            self.off()

    def off(self) -> None:
        self.pattern = Pattern("off")
        self._last = OFF
        try:
            self.leds.close()
        except Exception:  # a driver failing at shutdown must not hide why we shut down
            logger.exception("closing the LEDs failed")
