"""Audio tests go through PortAudio and ALSA; ALSA reads our fake devices' config.

ALSA_CONFIG_PATH must be set before PortAudio first initialises ALSA in this process."""

import os
from pathlib import Path

os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{Path(__file__).parents[1] / 'fixtures' / 'asoundrc.fake'}"
