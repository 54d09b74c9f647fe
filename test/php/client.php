<?php
/*
 * A php-gearman (pecl GearmanClient, libgearman 1.1) client for the tests: what PHP applications see.
 * Every event is printed as one JSON line, so the node:test side can assert order and content.
 *
 *   php client.php run PORT FUNCTION WORKLOAD         foreground job: status, data, warning, exception,
 *                                                     fail and complete callbacks, in arrival order
 *   php client.php background PORT FUNCTION WORKLOAD  doBackground: prints ["handle", H]
 *   php client.php status PORT HANDLE                 jobStatus(H): prints ["status", known, running, n, d]
 *
 * addServer() turns on the "exceptions" option by default, as every PHP application gets it.
 */
if (!extension_loaded('gearman')) {
    fwrite(STDERR, "the gearman PHP extension is not loaded (apt-get install php-cli php-gearman)\n");
    exit(3);
}
[$script, $mode, $port] = $argv;
$client = new GearmanClient();
$client->addServer('127.0.0.1', (int)$port);
$client->setTimeout(20000);

function say(array $event): void
{
    echo json_encode($event), "\n";
}

switch ($mode) {
    case 'run':
        [, , , $function, $workload] = $argv;
        // A callback's return value is taken as a gearman return code: these return nothing.
        $client->setStatusCallback(function (GearmanTask $task): void {
            say(['status', $task->taskNumerator(), $task->taskDenominator()]);
        });
        $client->setDataCallback(function (GearmanTask $task): void {
            say(['data', $task->data()]);
        });
        $client->setWarningCallback(function (GearmanTask $task): void {
            say(['warning', $task->data()]);
        });
        $client->setExceptionCallback(function (GearmanTask $task): void {
            say(['exception', $task->data()]);
        });
        $client->setFailCallback(function (GearmanTask $task): void {
            say(['fail']);
        });
        $client->setCompleteCallback(function (GearmanTask $task): void {
            say(['complete', $task->data()]);
        });
        $client->addTask($function, $workload);
        if (!$client->runTasks()) {
            say(['error', $client->error()]);
            exit(1);
        }
        break;
    case 'background':
        [, , , $function, $workload] = $argv;
        $handle = $client->doBackground($function, $workload);
        if ($client->returnCode() !== GEARMAN_SUCCESS) {
            say(['error', $client->error()]);
            exit(1);
        }
        say(['handle', $handle]);
        break;
    case 'status':
        $status = $client->jobStatus($argv[3]);
        say(array_merge(['status'], $status));
        break;
    default:
        fwrite(STDERR, "unknown mode $mode\n");
        exit(2);
}
