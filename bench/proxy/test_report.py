"""Checks report.py's arithmetic on a small run (python3 -m unittest
discover -s bench/proxy, as .ci/run does)."""
import contextlib
import io
import os
import tempfile
import unittest
import unittest.mock

import report

HEADER = "n\tround\tcontestant\tscenario\trps\tp50_ms\tp99_ms\tcpu_us\tnon2xx\trss_kb\tready_ms\tuser_us\tload_busy\n"


def row(rnd, who, rps, cpu, p99=1.0, load_busy=90, p50=0.5):
    return f"100\t{rnd}\t{who}\tvalid\t{rps}\t{p50}\t{p99}\t{cpu}\t0\t1024\t10\t1.0\t{load_busy}\n"


class ReportTest(unittest.TestCase):
    def render(self, rows):
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
            f.write(HEADER + "".join(rows))
        self.addCleanup(os.unlink, f.name)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), unittest.mock.patch("sys.argv", ["report.py", f.name]):
            report.main()
        return out.getvalue()

    def section(self, out, title):
        """The data rows of the table that follows `title`."""
        rows, table = [], False
        for line in out.split(title, 1)[1].splitlines()[1:]:
            if line.startswith("|"):
                table = True
                rows += [line] if line.startswith("| 100 ") else []
            elif table:
                break
        return rows

    def test_ratios_are_taken_within_each_round(self):
        # Round by round: 1.30x, 1.10x, 1.20x the requests at 10/12, 5/6,
        # 6.7/8 the CPU.
        rows = [row(1, "nginx", 100, 12), row(1, "portcullis", 130, 10),
                row(2, "nginx", 200, 6), row(2, "portcullis", 220, 5),
                row(3, "nginx", 150, 8), row(3, "portcullis", 180, 6.7)]
        (line,) = self.section(self.render(rows), "against nginx's same round")
        self.assertTrue(line.startswith("| 100 | valid | portcullis | 3 |"), line)
        self.assertIn("| 1.20x (1.10-1.30) |", line)
        self.assertIn("| 0.83x (0.83-0.84) |", line)

    def test_a_second_build_is_compared_with_the_first(self):
        rows = []
        for rnd, (a, b) in enumerate([(100, 110), (100, 90), (200, 220), (200, 200)], start=1):
            rows += [row(rnd, "nginx", 100, 10), row(rnd, "portcullis", a, 10), row(rnd, "portcullis-b", b, 10)]
        (line,) = self.section(self.render(rows), "against portcullis's same round")
        self.assertTrue(line.startswith("| 100 | valid | portcullis-b | 4 |"), line)
        # 1.10, 0.90, 1.10, 1.00: median 1.05, range 0.90-1.10.
        self.assertIn("1.05x", line)
        self.assertIn("(0.90-1.10)", line)

    def test_portcullis_is_compared_with_the_floor(self):
        rows = []
        for rnd, (floor, ours) in enumerate([(100, 99), (100, 97), (200, 202)], start=1):
            rows += [row(rnd, "nginx", 80, 10), row(rnd, "floor", floor, 8), row(rnd, "portcullis", ours, 9)]
        (line,) = self.section(self.render(rows), "against floor's same round")
        self.assertTrue(line.startswith("| 100 | valid | portcullis | 3 |"), line)
        # 0.99, 0.97, 1.01: median 0.99; CPU 9/8 in every round.
        self.assertIn("| 0.99x (0.97-1.01) | 1.12x (1.12-1.12) |", line)
        # nginx is no contestant against the floor.
        self.assertNotIn("| nginx |", self.render(rows).split("against floor's same round", 1)[1])

    def test_the_load_cpu_busy_share_is_the_median_over_rounds(self):
        rows = [row(1, "nginx", 100, 10, load_busy=90), row(1, "portcullis", 120, 9, load_busy=99),
                row(2, "nginx", 100, 10, load_busy=94), row(2, "portcullis", 120, 9, load_busy=97),
                row(3, "nginx", 100, 10, load_busy="nan"), row(3, "portcullis", 120, 9, load_busy=98)]
        lines = self.section(self.render(rows), "| N | scenario | contestant | req/s |")
        busy = {line.split(" | ")[2]: line.rsplit(" | ", 1)[1] for line in lines}
        # nginx: 90 and 94 (the unmeasured round left out); portcullis: 97, 98, 99.
        self.assertEqual(busy, {"nginx": "92% |", "portcullis": "98% |"})

    def test_a_fixed_rate_run_compares_cpu_and_leaves_latency_out(self):
        # RATE= rows: h2load gives no percentiles, lib.sh writes nan.
        fixed = {"p50": "nan", "p99": "nan"}
        rows = [row(1, "nginx", 50000, 11, **fixed), row(1, "portcullis", 50000, 9.5, **fixed),
                row(2, "nginx", 49990, 12, **fixed), row(2, "portcullis", 50000, 9.9, **fixed)]
        out = self.render(rows)
        (line,) = [r for r in self.section(out, "| N | scenario | contestant | req/s |") if "| portcullis |" in r]
        self.assertIn("| 1.00x | n/a | n/a | n/a | 9.7 | 0.84x |", line)
        self.assertNotIn("nan", out)
        (paired,) = self.section(out, "against nginx's same round")
        # CPU 9.5/11 = 0.86 and 9.9/12 = 0.83; no p99 to compare.
        self.assertIn("| 0.84x (0.83-0.86) | n/a |", paired)


if __name__ == "__main__":
    unittest.main()
