"""From settings to runs, writing nothing: the planner (every check of user input, then one
run per augmenter x split x seed), augmenter arguments, run ids, and sweep files."""
