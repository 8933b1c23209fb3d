"""The local simulation's own limits (a module of constants: the CLI reads them without loading
moto)."""

# Workflow executions evaluated at once; the rest wait, RUNNING, as executions throttled by the
# account's Lambda concurrency wait on AWS. The in-process Lambda runs one invocation at a time,
# so more executions in flight add threads (about 30 each) and segments held in memory (a 2 s
# 360p segment's frames are 14 MB), not speed: 8 keep it busy while moto's interpreter moves the
# others between states. README: "An hour on one machine".
DEFAULT_MAX_EXECUTIONS = 8
