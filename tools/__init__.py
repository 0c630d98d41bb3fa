"""Repository tools: notebook runner, student versions, the JupyterLab launcher.

``run_notebooks.py`` and ``make_student.py`` run as scripts; ``labserver`` is imported
(``from tools.labserver import JupyterLabServer``) by the browser test and the widget
latency benchmark.
"""
