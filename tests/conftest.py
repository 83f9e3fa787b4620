"""Suite-wide fixtures: plugins listed here apply to every test under tests/."""

pytest_plugins = ["fixtures.databases", "scan.vulndb.shared"]
