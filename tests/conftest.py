from pathlib import Path

pytest_plugins = ["tests.plugins.db"]
if (Path(__file__).parent / "plugins" / "emulator.py").exists():
    pytest_plugins.append("tests.plugins.emulator")
