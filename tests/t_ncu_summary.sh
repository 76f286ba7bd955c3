#!/bin/sh
# tools/ncu-summary.py, which sums gpu-check's Nsight Compute CSV of one frame (no GPU needed here):
# both layouts ncu writes, with values and units as ncu prints them (thousands separators, Kbyte,
# usecond), other output lines among the rows; the sums worked out by hand below. No rows: exit 1.
S=tools/ncu-summary.py
command -v python3 > /dev/null || { echo "FAIL: python3 is needed for $S"; exit 1; }
fail=0
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
check() { # check OUTPUT_FILE LINE_PATTERN MESSAGE
    if grep -q "$2" "$1"; then echo "PASS: $3"; else echo "FAIL: $3 (want /$2/)"; cat "$1"; fail=1; fi
}

# the details page: a row per kernel and metric. Kernel 1: 1,000,000 + 500 Kbyte, 2 usecond;
# kernel 2 (same function, other template arguments): 3 Mbyte + 1,000,000 byte, 1,000 nsecond;
# kernel 3: 0.25 Gbyte + 0 byte, 0.5 msecond
q='"0","1","catanet-gpubench","host"'
cat > "$d/details.csv" <<EOF
==PROF== Connected to process 1 (catanet-gpubench)
PROFILED 960x540: one frame between cudaProfilerStart and cudaProfilerStop
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"
"1","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<__half, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","dram__bytes_read.sum","byte","1,000,000"
"1","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<__half, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","dram__bytes_write.sum","Kbyte","500"
"1","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<__half, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","usecond","2"
"2","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<float, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","dram__bytes_read.sum","Mbyte","3"
"2","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<float, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","dram__bytes_write.sum","byte","1,000,000"
"2","7","catanet-gpubench","host","void lrsa_attn_tc_kernel<float, __half>(CatanetLrsaArgs, LrsaTable, int)","1","13","(256, 1, 1)","(2392, 4, 2)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","1,000"
"3","7","catanet-gpubench","host","scan_kernel(int, int *)","1","13","(1024, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","dram__bytes_read.sum","Gbyte","0.25"
"3","7","catanet-gpubench","host","scan_kernel(int, int *)","1","13","(1024, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","dram__bytes_write.sum","byte","0"
"3","7","catanet-gpubench","host","scan_kernel(int, int *)","1","13","(1024, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","msecond","0.5"
==PROF== Disconnected from process 1
EOF
python3 $S "$d/details.csv" t > "$d/out1"; rc=$?
# total: read 1e6 + 3e6 + 2.5e8 = 254e6, written 5e5 + 1e6 = 1.5e6; time 2 + 1 + 500 us = 0.503 ms
check "$d/out1" '^NCU t total: 3 kernels, DRAM 0.254 GB read + 0.002 GB written = 0.256 GB, kernel time 0.503 ms' \
    "details page: the totals (rc $rc)"
# lrsa: read 4e6, written 1.5e6 in 3 us: 5.5e6 / 3e-6 = 1833 GB/s; scan: 2.5e8 in 0.5 ms: 500 GB/s
check "$d/out1" '^NCU t kernel lrsa_attn_tc_kernel: 2 launches, DRAM 0.004 + 0.002 GB, 0.003 ms, 1833 GB/s' \
    "details page: two instantiations summed under one name"
check "$d/out1" '^NCU t kernel scan_kernel: 1 launches, DRAM 0.250 + 0.000 GB, 0.500 ms, 500 GB/s' \
    "details page: a kernel without templates"
[ "$(sed -n 2p "$d/out1" | cut -d: -f1)" = "NCU t kernel scan_kernel" ] && echo "PASS: largest traffic first" ||
    { echo "FAIL: largest traffic first"; fail=1; }

# the raw page: a column per metric, the units in the row under the header
cat > "$d/raw.csv" <<EOF
"ID","Process ID","Process Name","Host Name","Kernel Name","dram__bytes_read.sum","dram__bytes_write.sum","gpu__time_duration.sum"
"","","","","","Mbyte","Mbyte","usecond"
$q,"iasa_tc_kernel<__half, __half>(int)","1,500","500","1,000"
"1","1","catanet-gpubench","host","iasa_tc_kernel<__half, __half>(int)","500","500","1,000"
EOF
python3 $S "$d/raw.csv" r > "$d/out2"; rc=$?
# read 1.5e9 + 5e8 = 2e9, written 1e9, 2 ms: 3e9 / 2e-3 = 1500 GB/s
check "$d/out2" '^NCU r total: 2 kernels, DRAM 2.000 GB read + 1.000 GB written = 3.000 GB, kernel time 2.000 ms' \
    "raw page: the totals, units from the units row (rc $rc)"
check "$d/out2" '^NCU r kernel iasa_tc_kernel: 2 launches, DRAM 2.000 + 1.000 GB, 2.000 ms, 1500 GB/s' "raw page: the kernel line"

# gpu-check's second run: percentages (how busy a pipe was), averaged over a name's launches
# weighted by their times: xu (20% for 1 us, 60% for 3 us) = 50%, issue (40, 80) = 70%
cat > "$d/pct.csv" <<EOF
"ID","Process ID","Process Name","Host Name","Kernel Name","gpu__time_duration.sum","sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active","sm__issue_active.avg.pct_of_peak_sustained_active"
"","","","","","nsecond","%","%"
"1","1","catanet-gpubench","host","void lrsa_attn_tc_kernel<__half, __half>(int)","1,000","20","40"
"2","1","catanet-gpubench","host","void lrsa_attn_tc_kernel<__half, __half>(int)","3,000","60","80"
EOF
python3 $S "$d/pct.csv" p > "$d/out4"; rc=$?
check "$d/out4" '^NCU p kernel lrsa_attn_tc_kernel: 2 launches, DRAM 0.000 + 0.000 GB, 0.004 ms, 0 GB/s, xu 50%, issue 70%$' \
    "percentages: time-weighted means by short name (rc $rc)"
check "$d/out4" '^NCU p total: 2 kernels, .* kernel time 0.004 ms .*, 2 kernels without every byte and time metric$' \
    "percentages: kernels without byte metrics are named in the total"

# no rows (ncu could not read the counters): exit 1 with a line that says so
printf '==ERROR== ERR_NVGPUCTRPERM - The user does not have permission\n' > "$d/none.csv"
python3 $S "$d/none.csv" n > "$d/out3"; rc=$?
if [ $rc = 1 ] && grep -q '^NCU n: no kernel rows' "$d/out3"; then echo "PASS: no rows: exit 1"; else
    echo "FAIL: no rows: exit $rc"; fail=1; fi
exit $fail
