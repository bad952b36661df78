"""Pin factory choice and GPIO failures, through the real gpiozero, RPi.GPIO and lgpio."""

import logging

import pytest

from hardware.errors import GpioUnavailable, SettingError
from hardware.gpio import GpioSettings, choose_factory, make_pin_factory, open_gpio
from hardware.leds import GpioLeds, NullLeds
from hardware.presets import PRESETS, LedSpec, preset


@pytest.mark.parametrize("model, expected", [
    ("Raspberry Pi 5 Model B Rev 1.0", "lgpio"),
    ("Raspberry Pi 4 Model B Rev 1.4", "rpigpio"),
    ("Raspberry Pi Zero 2 W Rev 1.0", "rpigpio"),
    (None, "mock"),
    ("QEMU Virtual Machine", "mock"),
])
def test_auto_picks_the_factory_for_the_board(model, expected):
    assert choose_factory("auto", model) == expected
    assert choose_factory("lgpio", model) == "lgpio"


def test_off_a_pi_auto_is_mock_with_a_warning(tmp_path, caplog):
    from gpiozero.pins.mock import MockFactory

    with caplog.at_level(logging.WARNING):
        factory = make_pin_factory("auto", model_path=tmp_path / "no-such-model")
    assert isinstance(factory, MockFactory)
    assert "not a Raspberry Pi" in caplog.text and "mock pins" in caplog.text


def test_missing_rpi_gpio_names_the_install_step():
    with pytest.raises(GpioUnavailable) as err:
        make_pin_factory("rpigpio")
    assert "RPi.GPIO library is not installed" in str(err.value)
    assert "apt install python3-rpi.gpio" in str(err.value) and "lgpio" in str(err.value)


def test_lgpio_without_a_gpio_chip_names_the_cause_and_the_fix():
    with pytest.raises(GpioUnavailable) as err:
        make_pin_factory("lgpio")
    assert "cannot open the GPIO chip" in str(err.value) and "gpio group" in str(err.value)


def test_a_pi5_with_no_gpio_access_keeps_running_without_leds(tmp_path, caplog):
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    settings = GpioSettings(leds=LedSpec("gpio", (18,)))
    with caplog.at_level(logging.ERROR):
        gpio = open_gpio(settings, model_path=model)
    assert isinstance(gpio.leds, NullLeds) and gpio.pin_factory is None
    assert isinstance(gpio.problem, GpioUnavailable)
    assert "runs without LEDs and button" in caplog.text
    gpio.leds.set_color((1, 1, 1))  # harmless


def test_mock_factory_opens_the_configured_leds():
    gpio = open_gpio(GpioSettings(pin_factory="mock", leds=PRESETS["generic"].leds))
    assert isinstance(gpio.leds, GpioLeds) and gpio.problem is None
    gpio.leds.set_color((1, 0, 0))
    assert gpio.pin_factory.pin(18).state == pytest.approx(0.5)  # default brightness
    gpio.leds.close()


def test_apa102_without_its_library_is_reported_not_fatal():
    gpio = open_gpio(GpioSettings(pin_factory="mock", leds=preset("respeaker-2mic").leds))
    assert isinstance(gpio.leds, NullLeds)
    assert "pip install apa102-pi" in str(gpio.problem)


def test_config_errors_name_the_key():
    with pytest.raises(SettingError, match=r"\[gpio\] pin_factory = 'pigpio'"):
        GpioSettings(pin_factory="pigpio")
    with pytest.raises(SettingError, match=r"\[hardware\] preset = 'seeed'.*respeaker-2mic"):
        preset("seeed")
    with pytest.raises(SettingError, match="three pins"):
        open_gpio(GpioSettings(pin_factory="mock", leds=LedSpec("rgb", (1, 2))))


def test_presets_name_button_leds_and_audio_devices():
    assert preset("aiy-voicehat").button_pin == 23 and preset("aiy-voicehat").leds.pins == (25,)
    assert preset("respeaker-2mic").leds.count == 3 and "seeed2micvoicec" in preset("respeaker-2mic").input_device
    assert preset("respeaker-4mic").output_device == "default"  # the array has no speaker output
