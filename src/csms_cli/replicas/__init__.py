"""The distributed mode's sub-commands, one module each (``csms gateway``, ``csms sessions``,
...): a process imports the component it runs and no other."""
