"""Test and benchmark audio: TTS and recorded voices, a phone-line simulator, constructed calls."""
