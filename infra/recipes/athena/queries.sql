-- Athena example queries on the Glue tables of infra/terraform/modules/aws
-- (database "flowlake" by default; run them in the module's workgroup).
-- dt and hour are string partition columns resolved by partition
-- projection: filter on them, or Athena enumerates every hour since 2020.

-- Errors per server on one day.
SELECT server_name, server_ip, status, count(*) AS exchanges
FROM flowlake.http
WHERE dt = '2024-01-01' AND status >= 400
GROUP BY server_name, server_ip, status
ORDER BY exchanges DESC, server_ip, status;

-- Requests per hour of one day.
SELECT hour, count(*) AS requests
FROM flowlake.http
WHERE dt = '2024-01-01'
GROUP BY hour
ORDER BY hour;

-- The slowest exchanges of one hour.
SELECT ts, client_ip, server_name, method, path, status, duration_us
FROM flowlake.http
WHERE dt = '2024-01-01' AND hour = '00' AND complete
ORDER BY duration_us DESC, id
LIMIT 20;

-- Connections with their HTTP exchanges (tcp.id = http.tcp_id).
SELECT t.client_ip, t.server_ip, t.server_port, t.close, count(h.id) AS exchanges
FROM flowlake.tcp AS t
LEFT JOIN flowlake.http AS h ON h.tcp_id = t.id AND h.dt = t.dt
WHERE t.dt = '2024-01-01'
GROUP BY t.client_ip, t.server_ip, t.server_port, t.close
ORDER BY exchanges DESC, t.client_ip, t.server_ip, t.server_port
LIMIT 20;

-- Capture and parse health per agent on one day.
SELECT agent, count(*) AS segments, sum(CASE WHEN gap THEN 1 ELSE 0 END) AS gaps, sum(packets) AS packets
FROM flowlake.parse_status
WHERE dt = '2024-01-01'
GROUP BY agent
ORDER BY agent;

-- Kernel drops and spool overflow reported by the agents on one day.
SELECT agent, max(dropped) AS kernel_drops, max(overflow) AS spool_overflow
FROM flowlake.capture_status
WHERE dt = '2024-01-01'
GROUP BY agent
ORDER BY agent;
