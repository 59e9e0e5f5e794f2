// Resolve a bundle's mcp_config the way an MCPB host does, with the mcpb library's own
// substitution code. Usage: node resolve_mcpb_config.mjs BUNDLE_DIR USER_CONFIG_JSON
// Prints the command, args and env the host would start, as JSON.
import { readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";

const [bundleDir, userConfigJson] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(bundleDir, "manifest.json"), "utf-8"));
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath: bundleDir,
  systemDirs: { HOME: "/home/user", DESKTOP: "/home/user/Desktop", DOCUMENTS: "/home/user/Documents", DOWNLOADS: "/home/user/Downloads" },
  userConfig: JSON.parse(userConfigJson),
  pathSeparator: sep,
});
process.stdout.write(JSON.stringify(config ?? null));
