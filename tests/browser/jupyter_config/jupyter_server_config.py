"""Jupyter server settings for the browser tests only (tests/browser/test_jupyterlab.py).

The test copies this folder to a temporary directory and points JUPYTER_CONFIG_DIR
(and JUPYTERLAB_SETTINGS_DIR, at ``lab/user-settings``) there, so a learner's own
Jupyter configuration is neither read nor changed. The port, token and notebook
folder are given on the command line by the test.
"""

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

c.ServerApp.open_browser = False
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port_retries = 0  # the test chose a free port; never drift to another one
# Containers and CI runners often run as root; the server is on loopback with a token.
c.ServerApp.allow_root = True

# A notebook opens with the venv's python3 kernel; no "Select Kernel" dialog.
c.MappingKernelManager.default_kernel_name = "python3"

# No requests to the internet from the server: no news feed, no update check,
# no PyPI queries from the extension manager.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
