import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The feed serves the build from the binary (go:embed of dist/), so assets use relative-free
// absolute paths under /assets/ with content hashes: the Go handler caches those for a year.
export default defineConfig({
  base: "/",
  resolve: {
    // @tickwire/client (web/client) from its TypeScript sources, as in tsconfig.json's paths: no
    // client build needed first. One copy of the protobuf runtime: the client's sources import
    // it too, and would otherwise get web/client/node_modules' copy.
    alias: { "@tickwire/client": fileURLToPath(new URL("../client/src/index.ts", import.meta.url)) },
    dedupe: ["@bufbuild/protobuf"],
  },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against a feed from `make run`: proxy the WebSocket and the REST API.
    proxy: {
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
      "/api": "http://127.0.0.1:8080",
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
