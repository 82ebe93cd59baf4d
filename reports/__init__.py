"""Reports for regulators and markets (SPEC section 8).

The arithmetic (inventory, uncertainty, obligation position, intensity, submission
hashes and differences) is pure and lives in its own modules; `reports.repository`
is the SQL edge, `reports.build` joins the two, and the renderers (XLSX, HTML) only
lay out a computed report.
"""
