"""Planning: the pure planner, identity matching, drift, field diffs, and plans as files."""
