// Entry point of the dashboard (placeholder until the views land).
const app = document.getElementById("app");
if (app) app.textContent = "Tickwire dashboard";
