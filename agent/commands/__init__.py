"""The commands users run: the CLI (the only module that prints or exits), and what each
command runs around the barrier (the sidecar's health and named barriers, the exit barrier,
the workload, doctor, the Python API).
"""
