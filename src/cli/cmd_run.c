typedef int kiln_cmd_placeholder_t;
